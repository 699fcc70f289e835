import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** Where the keys came from, for messages ("environment", "profile dev in ~/.aws/credentials"); never the keys. */
  source: string;
}

export interface CredentialInputs {
  /** Explicit keys (flags, config file); they win over everything else. */
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** Profile named by the URL or a flag; otherwise AWS_PROFILE, otherwise "default". */
  profile?: string;
  /** Defaults to process.env; tests pass their own. */
  env?: NodeJS.ProcessEnv;
}

export interface ResolvedAwsSettings {
  credentials: S3Credentials;
  /** Region from AWS_REGION, AWS_DEFAULT_REGION or the profile's config, when any says one. */
  region: string | undefined;
}

/** A parsed INI file: section name -> key -> value. */
type Ini = Map<string, Map<string, string>>;

/** The subset of INI that the AWS shared files use: [section], key = value, # and ; comments. */
export function parseIni(text: string): Ini {
  const sections: Ini = new Map();
  let current: Map<string, string> | undefined;
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[\s*([^\]]+?)\s*\]$/.exec(line);
    if (section) {
      current = sections.get(section[1]) ?? new Map<string, string>();
      sections.set(section[1], current);
      continue;
    }
    const eq = line.indexOf('=');
    // Lines without "=" (nested sub-settings such as "s3 =" blocks' children) are ignored.
    if (eq <= 0 || current === undefined) continue;
    current.set(line.slice(0, eq).trim().toLowerCase(), line.slice(eq + 1).trim());
  }
  return sections;
}

function readIni(path: string): Ini | undefined {
  try {
    return parseIni(readFileSync(path, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read AWS shared file ${path}: ${(err as Error).message}`);
  }
}

const NO_CREDENTIALS_HINT =
  'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary keys), ' +
  'or AWS_PROFILE with a profile in ~/.aws/credentials or ~/.aws/config';

/**
 * Finds S3 keys the way the AWS CLI and SDKs do, in this order: explicit keys, the environment
 * (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN), then the profile (AWS_PROFILE or
 * "default") in the shared credentials file, then in the shared config file. Region comes from
 * AWS_REGION, AWS_DEFAULT_REGION or the profile's config. Error messages name the sources tried,
 * never a key.
 */
export function resolveAwsSettings(inputs: CredentialInputs = {}): ResolvedAwsSettings {
  const env = inputs.env ?? process.env;
  const home = env.HOME ?? homedir();
  const credentialsPath = env.AWS_SHARED_CREDENTIALS_FILE ?? join(home, '.aws', 'credentials');
  const configPath = env.AWS_CONFIG_FILE ?? join(home, '.aws', 'config');
  const explicitProfile = inputs.profile ?? env.AWS_PROFILE;
  const profile = explicitProfile ?? 'default';

  // Config sections are "[profile NAME]", except the default one which may be "[default]".
  const config = readIni(configPath);
  const configSection =
    config?.get(`profile ${profile}`) ?? (profile === 'default' ? config?.get('default') : undefined);
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? configSection?.get('region');

  if (inputs.accessKeyId !== undefined || inputs.secretAccessKey !== undefined) {
    if (!inputs.accessKeyId || !inputs.secretAccessKey) {
      throw new Error('S3 credentials given explicitly need both an access key id and a secret access key');
    }
    return {
      credentials: {
        accessKeyId: inputs.accessKeyId,
        secretAccessKey: inputs.secretAccessKey,
        sessionToken: inputs.sessionToken,
        source: 'explicit options',
      },
      region,
    };
  }

  // An explicitly chosen profile (URL or flag) beats ambient environment keys: the user asked for it.
  if (inputs.profile === undefined && (env.AWS_ACCESS_KEY_ID || env.AWS_SECRET_ACCESS_KEY)) {
    if (!env.AWS_ACCESS_KEY_ID || !env.AWS_SECRET_ACCESS_KEY) {
      throw new Error(
        `only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set in the environment; ${NO_CREDENTIALS_HINT}`,
      );
    }
    return {
      credentials: {
        accessKeyId: env.AWS_ACCESS_KEY_ID,
        secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
        sessionToken: env.AWS_SESSION_TOKEN || undefined,
        source: 'environment (AWS_ACCESS_KEY_ID)',
      },
      region,
    };
  }

  const fromSection = (
    section: Map<string, string> | undefined,
    where: string,
  ): S3Credentials | undefined => {
    const accessKeyId = section?.get('aws_access_key_id');
    const secretAccessKey = section?.get('aws_secret_access_key');
    if (!accessKeyId && !secretAccessKey) return undefined;
    if (!accessKeyId || !secretAccessKey) {
      throw new Error(
        `profile "${profile}" in ${where} has only one of aws_access_key_id and aws_secret_access_key`,
      );
    }
    return {
      accessKeyId,
      secretAccessKey,
      sessionToken: section?.get('aws_session_token') || undefined,
      source: `profile "${profile}" in ${where}`,
    };
  };
  const credentials =
    fromSection(readIni(credentialsPath)?.get(profile), credentialsPath) ??
    fromSection(configSection, configPath);
  if (credentials) return { credentials, region };

  if (explicitProfile !== undefined) {
    throw new Error(
      `no keys for profile "${profile}" in ${credentialsPath} or ${configPath}; ${NO_CREDENTIALS_HINT}`,
    );
  }
  throw new Error(`no S3 credentials found; ${NO_CREDENTIALS_HINT}`);
}
