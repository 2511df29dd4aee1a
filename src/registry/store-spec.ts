// The configuration of further blob stores, `<name>=<fs[:DIR]|s3://bucket[/prefix]>@<region>`,
// read without opening anything (the CLI checks it before the server starts; setup.ts opens them).
import { isDnsLabel } from '../domain/ids.js';

export const S3_SPEC = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/;
/** Region names as fleet files write them: lowercase letters, digits and '-' (e.g. eu-de-fra1). */
const REGION = /^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$/;

/** A named store as configured, before it is opened. */
export interface BlobStoreSpec {
  readonly name: string;
  readonly kind: 'fs' | 's3';
  /** fs: the directory as given ('' = `<dataDir>/registry-<name>`); s3: `s3://bucket[/prefix]`. */
  readonly location: string;
  readonly region: string;
}

const SPEC_SYNTAX = '<name>=<fs[:DIR]|s3://bucket[/prefix]>@<region>';

/**
 * `<name>=<fs[:DIR]|s3://bucket[/prefix]>@<region>`, e.g. `fra=fs:/srv/blobs@eu-de-fra1` or
 * `par=s3://fabrik-par/blobs@eu-fr-par1`. `flag` names where the text came from in errors.
 */
export function parseBlobStoreSpec(text: string, flag = '--blob-store-at'): BlobStoreSpec {
  const bad = (why: string) => new Error(`${flag} "${text}": ${why} (expected ${SPEC_SYNTAX})`);
  const eq = text.indexOf('=');
  const at = text.lastIndexOf('@');
  if (eq < 0) throw bad('no "=" after the store\'s name');
  if (at < eq) throw bad('no "@<region>" at the end');
  const name = text.slice(0, eq).trim();
  const where = text.slice(eq + 1, at).trim();
  const region = text.slice(at + 1).trim();
  if (!isDnsLabel(name)) throw bad(`the name "${name}" is not a DNS label (lowercase letters, digits, '-')`);
  if (name === 'default') throw bad('"default" is the name of the --blob-store store; choose another');
  if (!REGION.test(region)) throw bad(`the region "${region}" is not a region name like eu-de-fra1`);
  if (where === 'fs') return { name, kind: 'fs', location: '', region };
  if (where.startsWith('fs:')) {
    const dir = where.slice(3);
    if (!dir) throw bad('fs: needs a directory after the colon');
    return { name, kind: 'fs', location: dir, region };
  }
  if (S3_SPEC.test(where)) return { name, kind: 's3', location: where, region };
  throw bad(`"${where}" is neither fs, fs:DIR nor s3://bucket[/prefix]`);
}

/** FABRIK_BLOB_STORES: the same specs, comma-separated. */
export function blobStoreSpecsFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.FABRIK_BLOB_STORES ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}
