import { createReadStream, createWriteStream, existsSync, rmSync, statSync, type ReadStream } from 'node:fs';
import { finished } from 'node:stream/promises';
import type { Readable, Writable } from 'node:stream';
import type { Command } from 'commander';
import { Presets, SingleBar } from 'cli-progress';
import {
  dumpMeta,
  engineScheme,
  loadMeta,
  openEngine,
  openMetaService,
  planMigrations,
  type DumpProgress,
} from '../../meta/index.js';
import { sqlitePath } from '../../meta/engines/sqlite/index.js';
import { redactUrl } from '../../volume/index.js';
import { checkEngineUrl } from '../options.js';

const ENGINE_HELP = 'metadata engine, e.g. sqlite:/var/lib/strata/meta.db or postgres://...';

/**
 * Opening a SQLite engine creates its file; commands that read an existing volume check
 * first, so a mistyped path is reported instead of leaving an empty database behind.
 */
export function requireExistingEngine(engineUrl: string): void {
  if (engineScheme(engineUrl) !== 'sqlite') return;
  const path = sqlitePath(engineUrl);
  if (!existsSync(path)) {
    throw new Error(
      `no SQLite metadata file at ${path}; check --engine (or create a volume with "strata format")`,
    );
  }
}

/** `strata meta migrate|dump|load`, attached to the `meta` command of `strata meta serve` when present. */
export function registerMetaAdmin(program: Command): void {
  const meta =
    program.commands.find((c) => c.name() === 'meta') ??
    program.command('meta').description('metadata service commands');
  registerMigrate(meta);
  registerDump(meta);
  registerLoad(meta);
}

function registerMigrate(meta: Command): void {
  meta
    .command('migrate')
    .description(
      'bring a PostgreSQL metadata schema up to this version of StrataFS (servers also do it on start); ' +
        'SQLite volumes migrate on open, there is nothing to run',
    )
    .requiredOption('--engine <URL>', ENGINE_HELP)
    .option('--dry-run', 'print the migrations that would run, change nothing')
    .action(async (options: Record<string, unknown>) => {
      const engineUrl = checkEngineUrl(String(options.engine));
      if (engineScheme(engineUrl) === 'sqlite') {
        requireExistingEngine(engineUrl);
        process.stdout.write(
          `${redactUrl(engineUrl)}: SQLite volumes migrate on open (strata meta serve, up, fsck); nothing to do\n`,
        );
        return;
      }
      let plan: string;
      try {
        plan = await planMigrations(engineUrl);
      } catch (err) {
        throw new Error(
          `cannot read the schema version of ${redactUrl(engineUrl)}: ${(err as Error).message}; ` +
            'check --engine and that PostgreSQL is up',
        );
      }
      process.stdout.write(`${plan}\n`);
      if (options.dryRun === true) {
        process.stdout.write('dry run: nothing changed\n');
        return;
      }
      // Opening the engine applies what is pending, one transaction per step, under the same
      // advisory lock servers take: safe while servers start or run.
      const engine = await openEngine(engineUrl);
      await engine.close();
      process.stdout.write(`${engine.displayUrl}: schema up to date\n`);
    });
}

function registerDump(meta: Command): void {
  meta
    .command('dump')
    .description(
      "write a volume's metadata as JSON lines (settings including the client secret, counters, inodes, " +
        'entries; no history); take it with the volume unmounted. Load it with "strata meta load"',
    )
    .requiredOption('--engine <URL>', ENGINE_HELP)
    .option(
      '--output <FILE>',
      'where to write the dump ("-" for stdout); it holds the secret: keep it private',
      '-',
    )
    .action(async (options: Record<string, unknown>) => {
      const engineUrl = checkEngineUrl(String(options.engine));
      const outputPath = String(options.output);
      requireExistingEngine(engineUrl);
      const service = await openMetaService({ engineUrl, background: false });
      const toFile = outputPath !== '-';
      const out: Writable = toFile ? createWriteStream(outputPath, { mode: 0o600 }) : process.stdout;
      let progress: ProgressLine | undefined;
      try {
        const { inodesUsed } = await service.statfs();
        progress = new ProgressLine('dump', inodesUsed, 'inodes');
        const result = await dumpMeta(service.engine, out, {
          onProgress: (p) => progress?.update(p, p.inodes),
        });
        if (toFile) {
          out.end();
          await finished(out);
        }
        progress.finish(
          `dumped ${result.inodes} inode(s), ${result.dentries} entr${result.dentries === 1 ? 'y' : 'ies'} ` +
            `(${result.records} lines) from ${redactUrl(engineUrl)} to ${toFile ? outputPath : 'stdout'}`,
        );
      } catch (err) {
        progress?.stop();
        if (toFile) {
          out.destroy();
          // A partial dump would only fail later at load; do not leave it looking usable.
          rmSync(outputPath, { force: true });
        }
        throw err;
      } finally {
        await service.close();
      }
    });
}

function registerLoad(meta: Command): void {
  meta
    .command('load')
    .description(
      'load a dump of "strata meta dump" into an engine that holds no volume (a new SQLite file or an ' +
        "empty PostgreSQL database); clients keep using the source volume's secret",
    )
    .requiredOption('--engine <URL>', ENGINE_HELP)
    .option('--input <FILE>', 'the dump to read ("-" for stdin)', '-')
    .action(async (options: Record<string, unknown>) => {
      const engineUrl = checkEngineUrl(String(options.engine));
      const inputPath = String(options.input);
      const fromFile = inputPath !== '-';
      if (fromFile && !existsSync(inputPath)) {
        throw new Error(`no dump at ${inputPath}; check --input`);
      }
      const input: Readable = fromFile ? createReadStream(inputPath) : process.stdin;
      // Progress in bytes of the file when its size is known; a pipe only counts records.
      const totalBytes = fromFile ? statSync(inputPath).size : 0;
      // A SQLite file this load creates is removed if the load fails, so a retry finds no
      // half-loaded volume in its way.
      const newSqliteFile =
        engineScheme(engineUrl) === 'sqlite' && !existsSync(sqlitePath(engineUrl))
          ? sqlitePath(engineUrl)
          : undefined;
      const engine = await openEngine(engineUrl);
      const progress = new ProgressLine('load', totalBytes, 'bytes');
      let loaded = false;
      try {
        const result = await loadMeta(engine, input, {
          onProgress: (p) => progress.update(p, fromFile ? (input as ReadStream).bytesRead : p.records),
        });
        loaded = true;
        progress.finish(
          `loaded ${result.inodes} inode(s), ${result.dentries} entr${result.dentries === 1 ? 'y' : 'ies'} ` +
            `(${result.records} lines) into ${engine.displayUrl}`,
        );
      } finally {
        progress.stop();
        input.destroy();
        await engine.close();
        if (!loaded && newSqliteFile !== undefined) {
          for (const suffix of ['', '-wal', '-shm']) rmSync(`${newSqliteFile}${suffix}`, { force: true });
        }
      }
    });
}

/**
 * A progress bar on stderr when it is a terminal (the data may be on stdout); otherwise
 * silence until one summary line at the end, so logs and pipes stay clean.
 */
class ProgressLine {
  private readonly bar: SingleBar | null;
  private stopped = false;

  constructor(label: string, total: number, unit: string) {
    if (!process.stderr.isTTY) {
      this.bar = null;
      return;
    }
    const counts = '{records} lines, {inodes} inodes, {dentries} entries';
    this.bar = new SingleBar(
      {
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: true,
        format: total > 0 ? ` ${label} [{bar}] {value}/{total} ${unit} | ${counts}` : ` ${label} ${counts}`,
      },
      Presets.shades_classic,
    );
    this.bar.start(total, 0, { records: 0, inodes: 0, dentries: 0 });
  }

  update(p: DumpProgress, value: number): void {
    this.bar?.update(value, { records: p.records, inodes: p.inodes, dentries: p.dentries });
  }

  finish(summary: string): void {
    this.stop();
    process.stderr.write(`${summary}\n`);
  }

  /** Idempotent: also called on the error path so the terminal gets its cursor back. */
  stop(): void {
    if (this.bar === null || this.stopped) return;
    this.stopped = true;
    this.bar.stop();
  }
}
