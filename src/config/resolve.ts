import { readFileSync } from 'node:fs';
import { parseSetting, settingSpecs, type SettingName, type StrataConfig } from './settings.js';

/** Where a setting's value came from, lowest precedence first. */
export type SettingSource = 'default' | 'file' | 'env' | 'flag';

export interface ResolvedConfig {
  config: StrataConfig;
  sources: Record<SettingName, SettingSource>;
}

export interface ConfigInputs {
  /** Flag values as typed, keyed by setting name (only those given on the command line). */
  flags?: Partial<Record<SettingName, string>>;
  /** Usually process.env. */
  env?: Record<string, string | undefined>;
  /** A JSON file: `{ "memory": "1G", "attr-timeout": "2s" }` (flag names or setting names as keys). */
  filePath?: string;
}

export const settingNames = Object.keys(settingSpecs) as SettingName[];

const nameByKey = new Map<string, SettingName>();
for (const name of settingNames) {
  nameByKey.set(name, name);
  nameByKey.set(settingSpecs[name].flag, name);
}

/**
 * Builds the configuration: defaults, then the config file, then the environment, then
 * flags, each validated with a message that says which source was wrong and how to fix it.
 */
export function resolveConfig(inputs: ConfigInputs = {}): ResolvedConfig {
  const config = {} as Record<SettingName, string | number | boolean>;
  const sources = {} as Record<SettingName, SettingSource>;
  for (const name of settingNames) {
    config[name] = parseSetting(name, settingSpecs[name].defaultText, `default ${name}`);
    sources[name] = 'default';
  }
  if (inputs.filePath !== undefined) {
    for (const [name, text] of readConfigFile(inputs.filePath)) {
      config[name] = parseSetting(name, text, `${settingSpecs[name].flag} in config file ${inputs.filePath}`);
      sources[name] = 'file';
    }
  }
  for (const name of settingNames) {
    const text = inputs.env?.[settingSpecs[name].env];
    if (text === undefined || text === '') continue;
    config[name] = parseSetting(name, text, `environment variable ${settingSpecs[name].env}`);
    sources[name] = 'env';
  }
  for (const name of settingNames) {
    const text = inputs.flags?.[name];
    if (text === undefined) continue;
    config[name] = parseSetting(name, text, `--${settingSpecs[name].flag}`);
    sources[name] = 'flag';
  }
  return { config: config as StrataConfig, sources };
}

function readConfigFile(path: string): [SettingName, string][] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(
      `cannot read config file ${path}: ${(err as Error).message}; it must be a JSON object like {"memory": "1G"}`,
    );
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new Error(`config file ${path} must hold a JSON object like {"memory": "1G"}`);
  }
  const entries: [SettingName, string][] = [];
  for (const [key, value] of Object.entries(parsed)) {
    const name = nameByKey.get(key);
    if (name === undefined) {
      throw new Error(`config file ${path}: unknown setting "${key}"; known: ${settingNames.join(', ')}`);
    }
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      throw new Error(`config file ${path}: setting "${key}" must be a string or a number`);
    }
    entries.push([name, String(value)]);
  }
  return entries;
}

/** The configuration as lines for people (`strata status`, startup logs). Holds no secrets. */
export function describeConfig(resolved: ResolvedConfig): string[] {
  return settingNames.map((name) => {
    const value = resolved.config[name];
    const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
    return `${settingSpecs[name].flag.padEnd(16)} ${text.padEnd(14)} (${resolved.sources[name]}, ${unitOf(name)})`;
  });
}

function unitOf(name: SettingName): string {
  switch (settingSpecs[name].kind) {
    case 'size':
      return 'bytes';
    case 'duration':
      return 'ms';
    case 'count':
      return 'count';
    case 'flag':
      return 'boolean';
    default:
      return 'text';
  }
}
