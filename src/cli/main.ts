import { Command, CommanderError } from 'commander';
import { isFsError } from '../common/index.js';
import { VERSION } from '../volume/index.js';
import { ServingThreadExit, UsageError } from './options.js';
import { registerUp } from './commands/up.js';
import { registerFormat } from './commands/format.js';
import { registerMetaServe } from './commands/meta-serve.js';
import { registerMount } from './commands/mount.js';
import { registerUmount } from './commands/umount.js';
import { registerStatus } from './commands/status.js';
import { registerObjbench } from './commands/objbench.js';
import { registerFsck } from './commands/fsck.js';
import { registerGc } from './commands/gc.js';
import { registerRestore } from './commands/restore.js';
import { registerMetaAdmin } from './commands/meta-admin.js';

/** Exit codes: 0 success, 1 the operation failed, 2 the command line was wrong. */
export const ExitCode = { OK: 0, FAILED: 1, USAGE: 2 } as const;

export { VERSION };

/** The command line; `argv` is what a command that moves to a serving thread runs there again. */
export function buildProgram(argv: readonly string[] = []): Command {
  const program = new Command('strata')
    .description('StrataFS: an object-native POSIX file system (FUSE client, metadata service, object store)')
    .version(VERSION, '-V, --version')
    .showSuggestionAfterError(true);
  registerUp(program);
  registerFormat(program);
  registerMetaServe(program, argv);
  registerMount(program);
  registerUmount(program);
  registerStatus(program);
  registerObjbench(program);
  registerFsck(program);
  registerGc(program);
  registerRestore(program);
  // After registerMetaServe: adds migrate/dump/load to its `meta` command.
  registerMetaAdmin(program);
  applyErrorStyle(program);
  return program;
}

/** Commander's own errors (unknown flag, missing argument) become one line with the next step. */
function applyErrorStyle(command: Command): void {
  command.exitOverride();
  command.configureOutput({
    outputError: (text, write) => {
      const line = text
        .replace(/^error: /, '')
        .trim()
        .replace(/\n+/g, ' ');
      write(`strata: ${line} (see "${commandPath(command)} --help")\n`);
    },
  });
  for (const sub of command.commands) applyErrorStyle(sub);
}

function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c !== null; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Runs the CLI and returns the exit code; errors print as one line on stderr. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram(argv);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ExitCode.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version requests end here too, with exit code 0.
      return err.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`strata: ${err.message}\n`);
      return ExitCode.USAGE;
    }
    if (err instanceof ServingThreadExit) return err.exitCode;
    const message = err instanceof Error ? err.message : String(err);
    const code = isFsError(err) ? ` [${err.code}]` : '';
    process.stderr.write(`strata: ${message}${code}\n`);
    if (process.env.STRATA_DEBUG) process.stderr.write(`${(err as Error).stack ?? ''}\n`);
    return ExitCode.FAILED;
  }
}
