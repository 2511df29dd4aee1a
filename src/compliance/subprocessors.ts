// The site's sub-processors (GDPR Art. 28/30): a list the operator configures, never typed into a
// document by hand. Given as a YAML or JSON file through the server's environment
// (FABRIK_SUBPROCESSORS=/etc/fabrik/subprocessors.yaml), either a list or `{subprocessors: [...]}`:
//   - { name: Hetzner Online GmbH, purpose: colocation and power, country: de, contact: dpo@…, dataCategories: [...] }
// A bad file refuses the server's start with the file:line:column of the problem.
import { readFileSync } from 'node:fs';
import {
  InputProblem,
  type Path,
  formatProblem,
  isRecord,
  list,
  parseYamlText,
  record,
  string,
} from '../domain/input.js';

export interface Subprocessor {
  readonly name: string;
  readonly purpose: string;
  /** ISO 3166 country (lower case) where it processes. */
  readonly country: string;
  readonly contact?: string;
  readonly dataCategories?: readonly string[];
  /** Why a transfer outside the EU is lawful (e.g. an adequacy decision, SCCs), where it is one. */
  readonly safeguards?: string;
}

export const SUBPROCESSORS_ENV = 'FABRIK_SUBPROCESSORS';
const FIELDS = ['name', 'purpose', 'country', 'contact', 'dataCategories', 'safeguards'];

export class SubprocessorsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SubprocessorsError';
  }
}

/** Pure: the list from the file's text; problems name the line and column. */
export function parseSubprocessors(text: string, source = 'subprocessors'): Subprocessor[] {
  let parsed: ReturnType<typeof parseYamlText> | undefined;
  try {
    parsed = parseYamlText(text);
    const root = parsed.value;
    const items = isRecord(root) ? record(root, [], ['subprocessors'], ['subprocessors']).subprocessors : root;
    const base: Path = isRecord(root) ? ['subprocessors'] : [];
    return list(items ?? [], base, 0, 1000).map((v, i) => {
      const path = [...base, i];
      const r = record(v, path, FIELDS, ['name', 'purpose', 'country']);
      const country = string(r.country, [...path, 'country'], 2).toLowerCase();
      if (!/^[a-z]{2}$/.test(country))
        throw new InputProblem([...path, 'country'], 'must be a two-letter country code');
      return {
        name: string(r.name, [...path, 'name'], 200),
        purpose: string(r.purpose, [...path, 'purpose'], 500),
        country,
        ...(r.contact === undefined ? {} : { contact: string(r.contact, [...path, 'contact'], 200) }),
        ...(r.dataCategories === undefined
          ? {}
          : {
              dataCategories: list(r.dataCategories, [...path, 'dataCategories'], 0, 50).map((c, j) =>
                string(c, [...path, 'dataCategories', j], 200),
              ),
            }),
        ...(r.safeguards === undefined ? {} : { safeguards: string(r.safeguards, [...path, 'safeguards'], 500) }),
      };
    });
  } catch (err) {
    if (!(err instanceof InputProblem)) throw err;
    const pos = err.position ?? parsed?.locate(err.path, err.atKey);
    throw new SubprocessorsError(formatProblem(source, pos, err.path, err.message));
  }
}

/** The configured list: none configured is an empty list (the document then says so). */
export function loadSubprocessors(file: string | undefined = process.env[SUBPROCESSORS_ENV]): Subprocessor[] {
  if (!file?.trim()) return [];
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SubprocessorsError(`${SUBPROCESSORS_ENV}: cannot read ${file}: ${(err as Error).message}`);
  }
  return parseSubprocessors(text, file);
}
