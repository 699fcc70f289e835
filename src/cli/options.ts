import { Command, Option } from 'commander';
import {
  resolveConfig,
  settingSpecs,
  type ResolvedConfig,
  type SettingName,
  type SettingSpec,
} from '../config/index.js';
import { parseDurationMs } from '../common/index.js';

/** An error in how the command was called: printed as one line, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * A command that ran on a serving thread (runOnServingThread) ended with this exit code; it has
 * said why on stderr itself.
 */
export class ServingThreadExit extends Error {
  constructor(readonly exitCode: number) {
    super(`the serving thread exited with code ${exitCode}`);
    this.name = 'ServingThreadExit';
  }
}

/** Adds the flags of the named settings (and --config) to a command; their help comes from the settings table. */
export function addSettingOptions(command: Command, names: SettingName[]): Command {
  for (const name of names) {
    const spec: SettingSpec = settingSpecs[name];
    if (spec.kind === 'flag') {
      // An on/off setting is a bare flag (`--io-uring`); its env and config file take true/false.
      command.addOption(new Option(`--${spec.flag}`, `${spec.description} (env ${spec.env}=1)`));
      continue;
    }
    const placeholder = spec.kind === 'size' ? 'SIZE' : spec.kind === 'duration' ? 'DURATION' : 'VALUE';
    command.addOption(
      new Option(`--${spec.flag} <${placeholder}>`, `${spec.description} (env ${spec.env})`).default(
        undefined,
        spec.defaultText === '' ? 'none' : spec.defaultText,
      ),
    );
  }
  command.option('--config <FILE>', 'JSON file with settings, e.g. {"memory": "1G"} (flags and env win)');
  return command;
}

/** Builds the configuration from the command's flags, the environment and --config. */
export function configFromOptions(
  options: Record<string, unknown>,
  names: SettingName[],
  env: Record<string, string | undefined> = process.env,
): ResolvedConfig {
  const flags: Partial<Record<SettingName, string>> = {};
  for (const name of names) {
    const key = camelCase(settingSpecs[name].flag);
    const value = options[key];
    if (typeof value === 'string') flags[name] = value;
    else if (value === true) flags[name] = 'true';
  }
  const filePath = typeof options.config === 'string' ? options.config : undefined;
  try {
    return resolveConfig({ flags, env, filePath });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function camelCase(flag: string): string {
  return flag.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/** Parses HOST:PORT (IPv4, name, or [IPv6]) with a message that says how to write it. */
export function parseHostPort(text: string, what: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:/\s]+)):(\d{1,5})$/.exec(text.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || port < 1 || port > 65535) {
    throw new UsageError(`invalid ${what} "${text}": use HOST:PORT, e.g. 127.0.0.1:7070`);
  }
  return { host: match[1] ?? match[2], port };
}

/** A URL whose scheme is checked here; the part after it is passed through untouched. */
export function checkUrlScheme(text: string, what: string, schemes: string[], example: string): string {
  const match = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(text.trim());
  if (!match || !schemes.includes(`${match[1].toLowerCase()}:`)) {
    throw new UsageError(
      `invalid ${what} "${text}": expected a URL starting with ${schemes.join(' or ')}, e.g. ${example}`,
    );
  }
  return text.trim();
}

/** Object store URLs are passed through untouched to the store registry; only the shape is checked here. */
export function checkStorageUrl(text: string): string {
  if (!/^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$/.test(text.trim())) {
    throw new UsageError(
      `invalid --storage "${text}": use an object store URL, e.g. file:/var/lib/strata/objects or s3://bucket/prefix`,
    );
  }
  return text.trim();
}

/** Metadata engine URLs (sqlite:PATH, postgres://...) are passed through untouched. */
export function checkEngineUrl(text: string): string {
  return checkUrlScheme(
    text,
    '--engine',
    ['sqlite:', 'postgres:', 'postgresql:'],
    'sqlite:/var/lib/strata/meta.db',
  );
}

/** `strata mount` names a volume as META_ADDR/VOLUME; META_ADDR may itself be a socket path. */
export function parseVolumeAddress(text: string): { metaAddress: string; volumeName: string } {
  const slash = text.lastIndexOf('/');
  const metaAddress = slash > 0 ? text.slice(0, slash) : '';
  const volumeName = slash > 0 ? text.slice(slash + 1) : '';
  if (metaAddress === '' || volumeName === '' || !/^[A-Za-z0-9._-]+$/.test(volumeName)) {
    throw new UsageError(
      `invalid volume address "${text}": use META_ADDR/VOLUME, e.g. 127.0.0.1:7070/myvol, 10.0.0.1:7070,10.0.0.2:7070/myvol or /run/strata/meta.sock/myvol`,
    );
  }
  // Several servers of one volume: a comma-separated list, failed over in order (docs/rpc.md).
  for (const one of metaAddress.split(',')) if (!one.includes('/')) parseHostPort(one, 'metadata address');
  return { metaAddress, volumeName };
}

/**
 * An instant of a volume's history for `--as-of`, in µs since the epoch: an ISO 8601 date and
 * time (`2026-11-26T10:00:00Z`; without a zone it is local time), `@SECONDS` since the epoch,
 * or a duration ago (`30m ago`, `2h ago`, `7d ago`). Never in the future: the state "as of"
 * a later instant would still be changing.
 */
export function parseInstantUs(text: string, nowMs = Date.now()): number {
  const usage =
    'use an ISO 8601 time (2026-11-26T10:00:00Z), @SECONDS since the epoch, or a duration ago (30m ago, 2h ago)';
  const trimmed = text.trim();
  let ms: number;
  const ago = /^(.+?)\s+ago$/.exec(trimmed);
  if (ago) {
    try {
      ms = nowMs - parseDurationMs(ago[1]!, 'duration');
    } catch {
      throw new UsageError(`invalid instant "${text}": ${usage}`);
    }
  } else if (/^@\d+(\.\d+)?$/.test(trimmed)) {
    ms = Number(trimmed.slice(1)) * 1000;
  } else if (/^\d{4}-\d{2}-\d{2}/.test(trimmed)) {
    ms = Date.parse(trimmed.replace(' ', 'T'));
  } else {
    ms = Number.NaN;
  }
  if (!Number.isFinite(ms)) throw new UsageError(`invalid instant "${text}": ${usage}`);
  if (ms > nowMs) {
    throw new UsageError(
      `instant "${text}" is in the future (${new Date(ms).toISOString()}); give a past one`,
    );
  }
  return Math.round(ms * 1000);
}
