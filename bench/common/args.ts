import { basename } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** What a bench script declares of its command line: parseArgs's options, always parsed strictly. */
export type FlagsConfig = Pick<ParseArgsConfig, 'options' | 'allowPositionals' | 'allowNegative'>;

/** The script as named in messages: its path from bench/ on (`bench/volume/bench.js`). */
function scriptName(): string {
  const path = process.argv[1] ?? 'bench';
  return /(?:^|\/)(bench\/.+)$/.exec(path)?.[1] ?? basename(path);
}

/**
 * A wrong command line: one line on stderr, `<script>: <message>; run with --help for the flags`,
 * and exit status 2 (no stack trace). Also for a flag's value the script itself rejects.
 */
export function flagError(message: string): never {
  console.error(`${scriptName()}: ${message}; run with --help for the flags`);
  process.exit(2);
}

/**
 * This process's command line, parsed strictly against `config` (parseArgs from node:util): an
 * unknown or misspelt flag, a flag without its value or an argument a script does not take is an
 * error (flagError), never ignored. `--help` or `-h` anywhere prints `usage` and exits 0. Parse
 * before doing any work, so that neither starts a benchmark.
 */
export function parseFlags<T extends FlagsConfig>(usage: string, config: T): ReturnType<typeof parseArgs<T>> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    console.log(usage.trim());
    process.exit(0);
  }
  try {
    return parseArgs({ ...config, args, strict: true }) as ReturnType<typeof parseArgs<T>>;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS_')) throw error;
    // Node's messages may run over several lines, ending in a full stop.
    flagError((error as Error).message.replace(/\s*\n\s*/g, ' ').replace(/\.$/, ''));
  }
}
