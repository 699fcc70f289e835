import type { Command } from 'commander';
import { serveMetadata } from '../../volume/index.js';
import { checkEngineUrl, parseHostPort } from '../options.js';
import { stderrLog } from '../run.js';

export function registerMetaServe(program: Command): void {
  const meta = program.command('meta').description('metadata service commands');
  meta
    .command('serve')
    .description(
      'serve the volume of a metadata engine over RPC (clients authenticate with its secret), in the foreground; SIGINT/SIGTERM stop it',
    )
    .requiredOption(
      '--engine <URL>',
      'metadata engine, e.g. sqlite:/var/lib/strata/meta.db or postgres://...',
    )
    .requiredOption('--listen <HOST:PORT>', 'where clients connect, e.g. 127.0.0.1:7070')
    .action(async (options: Record<string, unknown>) => {
      const listen = parseHostPort(String(options.listen), '--listen');
      const server = await serveMetadata({
        engineUrl: checkEngineUrl(String(options.engine)),
        listen,
        log: stderrLog,
      });
      stderrLog(`metadata service listening on ${server.address}; Ctrl-C to stop`);
      const signal = await new Promise<string>((resolve) => {
        process.once('SIGINT', () => resolve('SIGINT'));
        process.once('SIGTERM', () => resolve('SIGTERM'));
      });
      stderrLog(`received ${signal}: stopping the metadata service`);
      await server.close();
    });
}
