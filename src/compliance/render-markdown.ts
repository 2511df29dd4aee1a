// Renderings of the signed documents for people: Markdown (stdout, files) and HTML (what the PDF
// is printed from). Both come from one outline per document, so the two never disagree, and both
// end with the signature block of the JSON they render (key id, digest, signature).
import type { AnnexXiDocument, AnnexXiSection } from './annex-xi.js';
import type { GdprArt30Document } from './gdpr-art30.js';
import type { DocumentSignature, Signed } from './sign.js';

export interface OutlineSection {
  readonly heading: string;
  readonly text?: readonly string[];
  readonly fields?: readonly (readonly [string, string])[];
  readonly table?: { readonly columns: readonly string[]; readonly rows: readonly (readonly string[])[] };
  readonly list?: readonly string[];
}

export interface Outline {
  readonly title: string;
  readonly intro: readonly string[];
  readonly sections: readonly OutlineSection[];
  readonly signature: DocumentSignature;
}

const show = (v: unknown): string =>
  v === null || v === undefined || v === '' ? '—' : Array.isArray(v) ? (v.length ? v.join(', ') : '—') : String(v);
const num = (n: number, digits = 3) =>
  Number(n.toFixed(digits)).toLocaleString('en-US', { maximumFractionDigits: digits });

const SECTION_TITLES: Record<AnnexXiSection, string> = {
  general: '1.1 General description (model card)',
  trainingData: '1.2 Training data',
  compute: '1.2 Computational resources',
  energy: '1.2 Energy consumption',
};

function missingText(doc: AnnexXiDocument, s: AnnexXiSection): string[] {
  const m = doc.missing.find((x) => x.section === s);
  return m ? [`Missing: ${m.reason}.`] : [];
}

export function annexXiOutline(signed: Signed<AnnexXiDocument>): Outline {
  const d = signed.document;
  const sections: OutlineSection[] = [];
  const g = d.general;
  sections.push({
    heading: SECTION_TITLES.general,
    ...(g
      ? {
          fields: [
            ['Title', show(g.card.title)],
            ['Summary', show(g.card.summary)],
            ['Licence', show(g.card.license ?? g.card.licenseName)],
            ['Licence link', show(g.card.licenseLink)],
            ['Base model', show(g.card.baseModel)],
            ['Card datasets', show(g.card.datasets)],
            ['Task', show(g.card.pipelineTag)],
            ['Library', show(g.card.libraryName)],
            ['Languages', show(g.card.language)],
            ['Tags', show(g.card.tags)],
            ['Parameters (from the weights)', g.parameters === null ? 'unknown' : num(g.parameters, 0)],
            ['Formats', show(g.formats)],
            ['Quantization', show(g.quantization)],
          ],
          ...(g.card.evalResults?.length
            ? {
                table: {
                  columns: ['Task', 'Dataset', 'Metric', 'Value'],
                  rows: g.card.evalResults.map((e) => [e.task, e.dataset, e.metric, String(e.value)]),
                },
              }
            : {}),
        }
      : { text: missingText(d, 'general') }),
  });
  sections.push({
    heading: SECTION_TITLES.trainingData,
    ...(d.trainingData
      ? {
          table: {
            columns: ['Dataset', 'Version', 'Licence', 'Title', 'Files', 'Bytes'],
            rows: d.trainingData.datasets.map((x) => [
              x.repo,
              x.commit.slice(0, 12),
              show(x.license),
              show(x.title),
              String(x.files),
              num(x.bytes, 0),
            ]),
          },
          list: d.trainingData.inputModels.map((m) => `input model ${m.repo}@${m.commit.slice(0, 12)}`),
        }
      : { text: missingText(d, 'trainingData') }),
  });
  const c = d.compute;
  sections.push({
    heading: SECTION_TITLES.compute,
    ...(c
      ? {
          fields: [
            [
              'Producing workload',
              `${c.workload.project}/${c.workload.name} (${c.workload.kind}), attempt ${c.producingAttempt}`,
            ],
            ['GPU-hours', num(c.gpuHours)],
            ...Object.entries(c.gpuHoursByModel).map(([m, h]) => [`GPU-hours on ${m}`, num(h)] as const),
            ['Training time', `${num(c.trainingTimeSeconds)} s (${show(c.firstStart)} → ${show(c.lastEnd)})`],
            [
              'FLOPs (6·N·D)',
              c.flops.estimate === null ? `unknown: ${c.flops.unknown}` : `${c.flops.estimate.toExponential(3)}`,
            ],
            ['N (parameters)', c.flops.parameters === null ? 'unknown' : num(c.flops.parameters, 0)],
            ['D (training tokens)', c.flops.trainingTokens === null ? 'unknown' : num(c.flops.trainingTokens, 0)],
          ],
          table: {
            columns: ['Attempt', 'Pool', 'GPU model', 'GPUs', 'Started', 'Ended', 'GPU-seconds', 'End'],
            rows: c.attempts.map((a) => [
              String(a.number),
              a.pool,
              a.gpuModel,
              String(a.gpus),
              show(a.startedAt),
              show(a.endedAt),
              num(a.gpuSeconds),
              show(a.endReason),
            ]),
          },
        }
      : { text: missingText(d, 'compute') }),
  });
  const e = d.energy;
  sections.push({
    heading: SECTION_TITLES.energy,
    ...(e
      ? {
          fields: [
            ['Energy', `${num(e.energyKWh, 6)} kWh (${e.basis})`],
            ['CO₂', `${num(e.co2Kg, 6)} kg`],
            ['Method', e.method],
          ],
          table: {
            columns: ['Attempt', 'kWh', 'kg CO₂', 'Figure'],
            rows: e.perAttempt.map((a) => [
              String(a.number),
              num(a.energyKWh, 6),
              num(a.co2Kg, 6),
              a.estimated ? 'estimated' : 'measured',
            ]),
          },
        }
      : { text: missingText(d, 'energy') }),
  });
  const v = d.versions.model;
  sections.push({
    heading: 'Versions and signatures',
    fields: [
      ['Commit', v.commit],
      ['Parent', show(v.parent)],
      ['Created', `${v.createdAt} by ${v.createdBy}`],
      ['Files', `${v.files} (${num(v.bytes, 0)} bytes)`],
      ['Manifest digest (sha256)', v.manifestDigest],
      ['Signatures', show(v.signatures.map((s) => `${s.keyid.slice(0, 16)}…${s.platform ? ' (platform)' : ''}`))],
      ['Verification', v.verification.ok ? 'verified' : `does not verify: ${v.verification.reason}`],
    ],
    list: d.versions.datasets.map(
      (x) => `dataset ${x.repo}@${x.commit}: ${x.verified ? 'verified' : 'does not verify'}`,
    ),
  });
  if (d.missing.length > 0)
    sections.push({
      heading: 'Missing',
      text: ['The records hold nothing for these sections; they are left empty, not filled in:'],
      list: d.missing.map((m) => `${SECTION_TITLES[m.section]}: ${m.reason}`),
    });
  return {
    title: `EU AI Act Annex XI technical documentation: ${d.model.repo}@${d.model.commit.slice(0, 12)}`,
    intro: [
      `Provider: ${d.provider.displayName || d.provider.org} (${d.provider.org}), project ${d.provider.project}.`,
      `Revision ${d.model.revision}, commit ${d.model.commit}. Generated ${d.generatedAt} by ${d.generatedBy} from the platform's records.`,
    ],
    sections,
    signature: signed.signature,
  };
}

export function gdprOutline(signed: Signed<GdprArt30Document>): Outline {
  const d = signed.document;
  const c = d.controller;
  return {
    title: `GDPR Art. 30 records of processing: ${c.displayName || c.name}`,
    intro: [`Generated ${d.generatedAt} by ${d.generatedBy} from the platform's records.`],
    signature: signed.signature,
    sections: [
      {
        heading: 'Controller',
        fields: [
          ['Organization', `${c.displayName || c.name} (${c.name})`],
          ['Residency', c.residency],
          ['Sovereignty policy set in force', show(d.residency.policyHash)],
          ['Customer since', c.createdAt],
        ],
      },
      {
        heading: 'Processor',
        fields: [
          ['Role', d.processor.role],
          [
            'Site region',
            `${d.processor.site.region} (${show(d.processor.site.country)}, ${d.processor.site.inEU ? 'EU' : 'outside the EU'})`,
          ],
        ],
      },
      {
        heading: 'Projects',
        table: {
          columns: ['Project', 'Workloads', 'Models', 'Datasets', 'Deployments'],
          rows: d.projects.map((p) => [
            p.name,
            show(Object.entries(p.workloads).map(([k, n]) => `${k} ${n}`)),
            String(p.models),
            String(p.datasets),
            show(p.deployments.map((x) => `${x.name}${x.storesPrompts ? ' (stores prompts)' : ''}`)),
          ]),
        },
      },
      {
        heading: 'Personal data',
        text: [`Rule: ${d.personalData.rule}.`],
        table: {
          columns: ['Dataset', 'Licence', 'Versions', 'Stored in'],
          rows: d.personalData.datasets.map((x) => [
            x.repo,
            show(x.license),
            x.versions.map((v) => v.commit.slice(0, 12)).join(', '),
            show(x.stores.map((s) => `${s.store} (${s.region})`)),
          ]),
        },
      },
      {
        heading: 'Storage locations',
        table: {
          columns: ['Store', 'Kind', 'Region', 'Country', 'EU', 'Objects', 'Bytes'],
          rows: d.storageLocations.map((s) => [
            s.store,
            s.kind,
            s.region,
            show(s.country),
            s.inEU ? 'yes' : 'no',
            String(s.objects),
            num(s.bytes, 0),
          ]),
        },
      },
      {
        heading: 'Processing locations',
        table: { columns: ['Pool', 'Regions'], rows: d.processingLocations.map((p) => [p.pool, show(p.regions)]) },
      },
      {
        heading: 'Sub-processors',
        table: {
          columns: ['Name', 'Purpose', 'Country', 'Contact', 'Safeguards'],
          rows: d.subprocessors.map((s) => [s.name, s.purpose, s.country, show(s.contact), show(s.safeguards)]),
        },
      },
      { heading: 'Retention', table: { columns: ['What', 'Kept'], rows: d.retention.map((r) => [r.what, r.period]) } },
      {
        heading: 'Access',
        table: {
          columns: ['Principal', 'Kind', 'Role', 'Scope'],
          rows: d.access.members.map((m) => [m.principal, m.kind, m.role, m.scope]),
        },
        list: [
          ...d.access.serviceAccounts.map((s) => `service account ${s.name}: ${s.activeKeys} active key(s)`),
          `operator break-glass grants: ${d.access.breakGlass.grants} (${d.access.breakGlass.active} active)`,
        ],
      },
      ...(d.notes.length ? [{ heading: 'Notes', list: d.notes }] : []),
    ],
  };
}

const mdCell = (s: string) => s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');

export function outlineMarkdown(o: Outline): string {
  const out: string[] = [`# ${o.title}`, '', ...o.intro.flatMap((p) => [p, ''])];
  for (const s of o.sections) {
    out.push(`## ${s.heading}`, '');
    for (const t of s.text ?? []) out.push(t, '');
    if (s.fields?.length) out.push(...s.fields.map(([k, v]) => `- **${k}:** ${v}`), '');
    if (s.table) {
      if (s.table.rows.length === 0) out.push('None on record.', '');
      else
        out.push(
          `| ${s.table.columns.map(mdCell).join(' | ')} |`,
          `|${s.table.columns.map(() => ' --- ').join('|')}|`,
          ...s.table.rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`),
          '',
        );
    }
    if (s.list?.length) out.push(...s.list.map((l) => `- ${l}`), '');
  }
  out.push(
    '## Signature',
    '',
    `- **Algorithm:** ${o.signature.algorithm} over the ${o.signature.canonicalization} canonical JSON of the document`,
    `- **Key id:** ${o.signature.keyid}`,
    `- **Digest:** ${o.signature.digest}`,
    `- **Signature:** ${o.signature.sig}`,
    '',
  );
  return out.join('\n');
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function outlineHtml(o: Outline): string {
  const parts: string[] = [
    '<!doctype html><html lang="en"><head><meta charset="utf-8">',
    `<title>${esc(o.title)}</title>`,
    '<style>body{font:10pt/1.4 sans-serif;margin:2cm}h1{font-size:15pt}h2{font-size:12pt;margin-top:1.2em}',
    'table{border-collapse:collapse;width:100%;margin:.4em 0}td,th{border:1px solid #999;padding:2px 4px;text-align:left;vertical-align:top}',
    'dt{font-weight:bold}code,.sig{font-family:monospace;word-break:break-all}</style></head><body>',
    `<h1>${esc(o.title)}</h1>`,
    ...o.intro.map((p) => `<p>${esc(p)}</p>`),
  ];
  for (const s of o.sections) {
    parts.push(`<h2>${esc(s.heading)}</h2>`);
    for (const t of s.text ?? []) parts.push(`<p>${esc(t)}</p>`);
    if (s.fields?.length)
      parts.push('<dl>', ...s.fields.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`), '</dl>');
    if (s.table) {
      if (s.table.rows.length === 0) parts.push('<p>None on record.</p>');
      else
        parts.push(
          '<table><thead><tr>',
          ...s.table.columns.map((c) => `<th>${esc(c)}</th>`),
          '</tr></thead><tbody>',
          ...s.table.rows.map((r) => `<tr>${r.map((x) => `<td>${esc(x)}</td>`).join('')}</tr>`),
          '</tbody></table>',
        );
    }
    if (s.list?.length) parts.push('<ul>', ...s.list.map((l) => `<li>${esc(l)}</li>`), '</ul>');
  }
  parts.push(
    '<h2>Signature</h2><dl>',
    `<dt>Algorithm</dt><dd>${esc(o.signature.algorithm)} over the ${esc(o.signature.canonicalization)} canonical JSON of the document</dd>`,
    `<dt>Key id</dt><dd class="sig">${esc(o.signature.keyid)}</dd>`,
    `<dt>Digest</dt><dd class="sig">${esc(o.signature.digest)}</dd>`,
    `<dt>Signature</dt><dd class="sig">${esc(o.signature.sig)}</dd>`,
    '</dl></body></html>',
  );
  return parts.join('\n');
}
