import pg from 'pg';

/**
 * Drops and creates database `name` on the cluster `admin` is connected to, and returns the
 * engine URL for it: `baseUrl` with that database and the query parameters of `params` (engine
 * URL settings; later ones win).
 */
export async function freshDatabase(
  admin: pg.Client,
  baseUrl: string,
  name: string,
  params: string,
): Promise<string> {
  await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  for (const [key, value] of new URLSearchParams(params)) url.searchParams.set(key, value);
  return url.toString();
}
