// README.md model cards, read the way the Hugging Face Hub reads them: YAML front matter between
// `---` lines at the very top holds the structured fields; the markdown body gives a title (its
// first heading) and a summary (its first prose paragraph).
//
// Bad metadata is refused rather than dropped (the Hub refuses such a push too): a YAML error
// names its line:column in the README, an unknown license names the id.
import { parseDocument } from 'yaml';
import { AppError } from '../domain/errors.js';

export const MAX_MODEL_CARD_BYTES = 64 * 1024;
const MAX_SUMMARY_CHARS = 500;

/** One evaluation result of `model-index`, flattened. */
export interface EvalResult {
  /** task.type (e.g. 'text-classification'), else task.name. */
  task: string;
  /** dataset.type (the dataset's Hub id, e.g. 'glue'), else dataset.name. */
  dataset: string;
  datasetConfig?: string;
  split?: string;
  /** metric.type (e.g. 'accuracy'), else metric.name. */
  metric: string;
  value: number | string;
}

/** The structured card (YAML keys in camelCase: base_model → baseModel, model-index → evalResults). */
export interface ModelCard {
  /** Lower-case Hub/SPDX id, 'other', or an SPDX expression of them ('mit OR apache-2.0'). */
  license?: string;
  licenseName?: string;
  licenseLink?: string;
  baseModel?: string[];
  datasets?: string[];
  pipelineTag?: string;
  libraryName?: string;
  tags?: string[];
  language?: string[];
  evalResults?: EvalResult[];
  title?: string;
  summary?: string;
}

/** License ids the Hub offers (lower-case SPDX ids where SPDX has one), plus 'other' and 'unknown'. */
const LICENSES = new Set(
  (
    'apache-2.0 mit openrail openrail++ bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0 ' +
    'bigcode-openrail-m afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc ' +
    'cc0-1.0 cc-by-2.0 cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0 ' +
    'cc-by-nc-4.0 cc-by-nd-4.0 cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 ' +
    'cdla-sharing-1.0 cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1 ' +
    'eupl-1.2 agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc lppl-1.3c ms-pl mpl-2.0 odc-by odbl ' +
    'osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib pddl lgpl-lr deepfloyd-if-license llama2 llama3 llama3.1 ' +
    'llama3.2 llama3.3 llama4 gemma apple-ascl h-research intel-research other unknown'
  ).split(' '),
);

function invalid(message: string, details: Record<string, unknown> = {}): AppError {
  return new AppError('MODEL_CARD_INVALID', `README.md model card: ${message}`, details);
}

/** Parses a README.md (text or its bytes). Throws MODEL_CARD_TOO_LARGE or MODEL_CARD_INVALID. */
export function parseModelCard(input: string | Uint8Array): ModelCard {
  const bytes = typeof input === 'string' ? Buffer.byteLength(input, 'utf8') : input.byteLength;
  if (bytes > MAX_MODEL_CARD_BYTES) {
    throw new AppError(
      'MODEL_CARD_TOO_LARGE',
      `README.md model card is ${bytes} bytes; at most ${MAX_MODEL_CARD_BYTES} are read`,
      { bytes, limit: MAX_MODEL_CARD_BYTES },
    );
  }
  const text = (typeof input === 'string' ? input : Buffer.from(input).toString('utf8')).replace(/^\uFEFF/, '');
  const { yaml, body } = splitFrontMatter(text);
  const card = yaml === undefined ? {} : structuredFields(parseYaml(yaml));
  const { title, summary } = readBody(body);
  if (title) card.title = title;
  if (summary) card.summary = summary;
  return card;
}

/** The front matter (without its `---` lines) and the body after it. */
function splitFrontMatter(text: string): { yaml?: string; body: string } {
  const lines = text.split(/\r?\n/);
  if (lines[0]?.trimEnd() !== '---') return { body: text };
  const end = lines.findIndex((l, i) => i > 0 && l.trimEnd() === '---');
  if (end < 0) throw invalid('the front matter opened by --- on line 1 is never closed', { line: 1 });
  return { yaml: lines.slice(1, end).join('\n'), body: lines.slice(end + 1).join('\n') };
}

function parseYaml(yaml: string): Record<string, unknown> {
  const doc = parseDocument(yaml, { uniqueKeys: true, prettyErrors: false });
  const err = doc.errors[0];
  if (err) {
    // +1: the YAML starts on the README's line 2, after the opening ---.
    const before = yaml.slice(0, err.pos[0]).split('\n');
    const line = before.length + 1;
    const column = before[before.length - 1].length + 1;
    const first = err.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    throw invalid(`invalid YAML at line ${line}:${column}: ${first}`, { line, column, yaml: err.code });
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw invalid(`invalid YAML: ${(e as Error).message}`);
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid('the front matter is not a YAML mapping');
  return value as Record<string, unknown>;
}

function structuredFields(y: Record<string, unknown>): ModelCard {
  const card: ModelCard = {};
  if (y.license !== undefined && y.license !== null) card.license = normalizeLicense(scalar(y.license, 'license'));
  setIf(card, 'licenseName', optScalar(y.license_name, 'license_name'));
  setIf(card, 'licenseLink', optScalar(y.license_link, 'license_link'));
  setIf(card, 'baseModel', optList(y.base_model, 'base_model'));
  setIf(card, 'datasets', optList(y.datasets, 'datasets'));
  setIf(card, 'pipelineTag', optScalar(y.pipeline_tag, 'pipeline_tag'));
  setIf(card, 'libraryName', optScalar(y.library_name, 'library_name'));
  setIf(card, 'tags', optList(y.tags, 'tags'));
  setIf(card, 'language', optList(y.language, 'language'));
  if (y['model-index'] !== undefined && y['model-index'] !== null) card.evalResults = evalResults(y['model-index']);
  return card;
}

function setIf<K extends keyof ModelCard>(card: ModelCard, key: K, value: ModelCard[K] | undefined): void {
  if (value !== undefined) card[key] = value;
}

/** A string (numbers and booleans as text: YAML reads `language: no` or `tags: [2024]` so). */
function scalar(v: unknown, field: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw invalid(`${field} must be a string`, { field });
}

function optScalar(v: unknown, field: string): string | undefined {
  return v === undefined || v === null ? undefined : scalar(v, field);
}

/** A list of strings; a single string stands for a list of one. */
function optList(v: unknown, field: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) return [scalar(v, field)];
  return v.map((x, i) => scalar(x, `${field}[${i}]`));
}

/**
 * A license id from LICENSES, or an SPDX expression of them with AND, OR and parentheses.
 * Ids compare case-insensitively (SPDX writes Apache-2.0, the Hub apache-2.0) and come back lower-case.
 */
export function normalizeLicense(text: string): string {
  const tokens = text.match(/\(|\)|[^\s()]+/g) ?? [];
  if (tokens.length === 0) throw invalid('license is empty', { field: 'license' });
  let i = 0;
  const out: string[] = [];
  const expr = (): void => {
    term();
    while (tokens[i]?.toUpperCase() === 'OR') {
      out.push('OR');
      i++;
      term();
    }
  };
  const term = (): void => {
    factor();
    while (tokens[i]?.toUpperCase() === 'AND') {
      out.push('AND');
      i++;
      factor();
    }
  };
  const factor = (): void => {
    const t = tokens[i++];
    if (t === '(') {
      out.push('(');
      expr();
      if (tokens[i++] !== ')') throw invalid(`license "${text}": unbalanced parentheses`, { field: 'license' });
      out.push(')');
      return;
    }
    if (t === undefined || t === ')' || /^(AND|OR)$/i.test(t)) {
      throw invalid(`license "${text}" is not a valid SPDX expression`, { field: 'license' });
    }
    const id = t.toLowerCase();
    if (!LICENSES.has(id)) {
      throw invalid(`unknown license "${t}": use an SPDX id such as apache-2.0 or mit, or "other" with license_name`, {
        field: 'license',
        license: t,
      });
    }
    out.push(id);
  };
  expr();
  if (i < tokens.length) throw invalid(`license "${text}" is not a valid SPDX expression`, { field: 'license' });
  return out.join(' ').replace(/\( /g, '(').replace(/ \)/g, ')');
}

/** model-index: [{name, results: [{task, dataset, metrics: [{type, value}]}]}], flattened. */
function evalResults(index: unknown): EvalResult[] {
  const bad = (path: string, what: string) => invalid(`model-index${path} ${what}`, { field: `model-index${path}` });
  if (!Array.isArray(index)) throw bad('', 'must be a list');
  const out: EvalResult[] = [];
  index.forEach((model, m) => {
    const results = (model as { results?: unknown })?.results;
    if (!Array.isArray(results)) throw bad(`[${m}].results`, 'must be a list');
    results.forEach((r, ri) => {
      const at = `[${m}].results[${ri}]`;
      const res = r as { task?: any; dataset?: any; metrics?: unknown };
      const task = pickName(res?.task, 'type', 'name');
      if (!task) throw bad(`${at}.task`, 'needs a type or a name');
      const dataset = pickName(res.dataset, 'type', 'name');
      if (!dataset) throw bad(`${at}.dataset`, 'needs a type or a name');
      if (!Array.isArray(res.metrics)) throw bad(`${at}.metrics`, 'must be a list');
      res.metrics.forEach((mt, mi) => {
        const metric = pickName(mt, 'type', 'name');
        const value = (mt as { value?: unknown })?.value;
        if (!metric) throw bad(`${at}.metrics[${mi}]`, 'needs a type or a name');
        if (typeof value !== 'number' && typeof value !== 'string') {
          throw bad(`${at}.metrics[${mi}].value`, 'must be a number or a string');
        }
        const e: EvalResult = { task, dataset, metric, value };
        const config = pickName(res.dataset, 'config');
        const split = pickName(res.dataset, 'split');
        if (config) e.datasetConfig = config;
        if (split) e.split = split;
        out.push(e);
      });
    });
  });
  return out;
}

function pickName(o: unknown, ...keys: string[]): string | undefined {
  if (typeof o !== 'object' || o === null) return undefined;
  for (const k of keys) {
    const v = (o as Record<string, unknown>)[k];
    if (typeof v === 'string' && v !== '') return v;
    if (typeof v === 'number') return String(v);
  }
  return undefined;
}

/** The first heading, and the first paragraph of prose (not lists, tables, HTML, code or images). */
export function readBody(body: string): { title?: string; summary?: string } {
  const lines = body
    .replace(/<!--[\s\S]*?-->/g, '')
    .split(/\r?\n/)
    .map((l) => l.trimEnd());
  let title: string | undefined;
  let summary: string | undefined;
  let para: string[] = [];
  let fence: string | undefined;
  const endParagraph = () => {
    if (!summary && para.length > 0) summary = cap(inline(para.join(' ')));
    para = [];
  };
  for (let i = 0; i < lines.length && !(title && summary); i++) {
    const line = lines[i];
    const fenceMark = /^\s*(```|~~~)/.exec(line)?.[1];
    if (fence || fenceMark) {
      endParagraph();
      if (fence && fenceMark === fence) fence = undefined;
      else if (!fence) fence = fenceMark;
      continue;
    }
    const atx = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    const setext = para.length === 1 && /^\s{0,3}(=+|-+)\s*$/.test(line);
    if (atx || setext) {
      const heading = atx ? atx[1] : para[0];
      if (setext) para = [];
      endParagraph();
      if (!title && heading) title = inline(heading);
      continue;
    }
    if (line.trim() === '') {
      endParagraph();
      continue;
    }
    if (summary || !isProse(line)) {
      endParagraph();
      continue;
    }
    para.push(line.trim().replace(/^>\s?/, ''));
  }
  endParagraph();
  const out: { title?: string; summary?: string } = {};
  if (title) out.title = title;
  if (summary) out.summary = summary;
  return out;
}

function isProse(line: string): boolean {
  const t = line.trim();
  if (/^(<|\||[-*+]\s|\d+[.)]\s|(-{3,}|\*{3,}|_{3,})$)/.test(t)) return false;
  // A line that is only images (badges, logos) says nothing.
  return t.replace(/\[?!\[[^\]]*\]\([^)]*\)(\]\([^)]*\))?/g, '').trim() !== '';
}

/** Markdown inline markup removed: images, links to their text, emphasis and code marks. */
function inline(s: string): string {
  return s
    .replace(/!\[[^\]]*\]\([^)]*\)/g, '')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/(\*\*|__|\*|_|`)(\S(?:.*?\S)?)\1/g, '$2')
    .replace(/\s+/g, ' ')
    .trim();
}

function cap(s: string): string {
  if (s.length <= MAX_SUMMARY_CHARS) return s;
  const cut = s.slice(0, MAX_SUMMARY_CHARS);
  const space = cut.lastIndexOf(' ');
  return `${(space > MAX_SUMMARY_CHARS * 0.6 ? cut.slice(0, space) : cut).trimEnd()}…`;
}
