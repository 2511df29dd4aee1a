// Generating a compliance document: facts from the records, the pure builder, the platform's
// signature over its canonical JSON, and one audit entry through write() naming the document's
// digest (so an auditor can match a document handed to them with the log). Renderings (Markdown,
// PDF) are of the signed JSON and carry its signature.
import { type Ctx, findOrg, requireRole, write } from '../app/context.js';
import { AppError } from '../domain/errors.js';
import { type EnergySite, energySiteFromEnv } from '../metering/energy.js';
import { renderPdf } from '../metering/pdf.js';
import type { RepoId } from '../registry/names.js';
import type { Registry } from '../registry/registry.js';
import { type AnnexXiDocument, buildAnnexXi } from './annex-xi.js';
import { annexXiFacts } from './annex-xi-facts.js';
import { type GdprArt30Document, buildGdprArt30 } from './gdpr-art30.js';
import { gdprFacts } from './gdpr-art30-facts.js';
import { type Outline, annexXiOutline, gdprOutline, outlineHtml, outlineMarkdown } from './render-markdown.js';
import { type Signed, signDocument } from './sign.js';
import { type Subprocessor, loadSubprocessors } from './subprocessors.js';

export const DOCUMENT_FORMATS = ['json', 'md', 'pdf'] as const;
export type DocumentFormat = (typeof DOCUMENT_FORMATS)[number];

export interface ComplianceDeps {
  readonly registry?: Registry;
  /** The site's energy rules (default: from the environment, as usage uses them). */
  readonly site?: EnergySite;
  /** The configured sub-processors (default: FABRIK_SUBPROCESSORS, read once). */
  readonly subprocessors?: readonly Subprocessor[];
}

let fromEnv: { site: EnergySite; subprocessors: readonly Subprocessor[] } | undefined;
function defaults(): { site: EnergySite; subprocessors: readonly Subprocessor[] } {
  fromEnv ??= { site: energySiteFromEnv(), subprocessors: loadSubprocessors() };
  return fromEnv;
}

function signerOf(deps: ComplianceDeps): Registry {
  if (!deps.registry)
    throw new AppError(
      'UNAVAILABLE',
      'compliance documents are signed with the registry key; this server has no registry',
    );
  return deps.registry;
}

export async function generateAnnexXi(
  ctx: Ctx,
  deps: ComplianceDeps,
  id: RepoId,
  revision: string,
): Promise<Signed<AnnexXiDocument>> {
  const reg = signerOf(deps);
  const { facts, subject } = await annexXiFacts(ctx, reg, deps.site ?? defaults().site, id, revision);
  const signed = signDocument(buildAnnexXi(facts), reg.signer);
  await write(
    ctx,
    {
      action: 'compliance.annex-xi.generate',
      resource: subject.resource,
      orgId: subject.orgId,
      projectId: subject.projectId,
    },
    // The entry's after-digest is the document's digest: the log names exactly what was handed out.
    async () => ({ result: undefined, after: signed.document }),
  );
  return signed;
}

/** Org admins (and operators): the records name every member and where all of the org's data is. */
export async function generateGdprArt30(
  ctx: Ctx,
  deps: ComplianceDeps,
  orgName: string,
): Promise<Signed<GdprArt30Document>> {
  const reg = signerOf(deps);
  const org = await findOrg(ctx, orgName);
  const spec = {
    action: 'compliance.gdpr-art30.generate',
    resource: `orgs/${org.name}/compliance/gdpr-art30`,
    orgId: org.id,
  };
  await requireRole(ctx, spec, 'admin', 'generating the records of processing');
  const facts = await gdprFacts(ctx, reg, deps.subprocessors ?? defaults().subprocessors, org);
  const signed = signDocument(buildGdprArt30(facts), reg.signer);
  await write(ctx, spec, async () => ({ result: undefined, after: signed.document }));
  return signed;
}

export interface Rendered {
  readonly contentType: string;
  readonly body: string | Buffer;
}

async function rendered(outline: Outline, signed: unknown, format: DocumentFormat): Promise<Rendered> {
  if (format === 'json') return { contentType: 'application/json', body: `${JSON.stringify(signed, null, 2)}\n` };
  if (format === 'md') return { contentType: 'text/markdown; charset=utf-8', body: outlineMarkdown(outline) };
  return { contentType: 'application/pdf', body: await renderPdf(outlineHtml(outline)) };
}

export function renderAnnexXi(signed: Signed<AnnexXiDocument>, format: DocumentFormat): Promise<Rendered> {
  return rendered(annexXiOutline(signed), signed, format);
}

export function renderGdprArt30(signed: Signed<GdprArt30Document>, format: DocumentFormat): Promise<Rendered> {
  return rendered(gdprOutline(signed), signed, format);
}
