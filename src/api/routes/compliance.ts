// Routes for compliance documents, generated from the records on each request, signed with the
// platform's key and entered in the audit log (src/compliance/service.ts):
//   GET /compliance/annex-xi/{org.project}/{name}[/{rev}]      EU AI Act Annex XI of a model version
//   GET /orgs/{org}/compliance/gdpr-art30                          GDPR Art. 30 records of an org (admins)
// `?format=json` (default: the signed document), `md` (Markdown) or `pdf`.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type as T } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import {
  DOCUMENT_FORMATS,
  type DocumentFormat,
  type Rendered,
  generateAnnexXi,
  generateGdprArt30,
  renderAnnexXi,
  renderGdprArt30,
} from '../../compliance/service.js';
import { parseRepoId } from '../../registry/names.js';
import type { Ctx } from '../../app/context.js';
import { type RouteDeps, ctxOf } from '../context.js';
import * as S from '../schemas.js';

const errors = { '4xx': S.ErrorBody, 503: S.ErrorBody };
const Format = T.Object({
  format: T.Optional(
    T.Union(
      DOCUMENT_FORMATS.map((f) => T.Literal(f)),
      { default: 'json' },
    ),
  ),
});
const Signature = T.Object({
  algorithm: T.Literal('ed25519'),
  canonicalization: T.Literal('RFC8785'),
  keyid: T.String({ description: "hex SHA-256 of the signing key's DER SPKI (GET /registry/signing-key)" }),
  digest: T.String({ description: 'sha256:<hex> of the RFC 8785 canonical JSON of `document`' }),
  sig: T.String({ description: 'base64 Ed25519 signature over those canonical bytes' }),
});
const AnnexXiDocument = T.Object({
  schema: T.Literal('fabrik.compliance/annex-xi/v1'),
  kind: T.Literal('annex-xi'),
  generatedAt: T.String(),
  generatedBy: T.String(),
  model: T.Object({ repo: T.String(), revision: T.String(), commit: T.String() }),
  provider: T.Object({ org: T.String(), displayName: T.String(), project: T.String() }),
  general: T.Unknown({ description: 'the model card and what the weights hold; null when missing' }),
  trainingData: T.Unknown({
    description: 'dataset versions from lineage, their cards and licences; null when missing',
  }),
  compute: T.Unknown({
    description: 'GPU-hours by GPU model, training time, FLOPs (6·N·D or unknown); null when missing',
  }),
  energy: T.Unknown({ description: 'kWh and kg CO2, measured or estimated (labelled); null when missing' }),
  versions: T.Unknown({ description: 'the commit, its manifest digest and signatures, the inputs verified' }),
  missing: T.Array(T.Object({ section: T.String(), reason: T.String() })),
});
const GdprDocument = T.Object({
  schema: T.Literal('fabrik.compliance/gdpr-art30/v1'),
  kind: T.Literal('gdpr-art30'),
  generatedAt: T.String(),
  generatedBy: T.String(),
  controller: T.Unknown(),
  processor: T.Unknown(),
  residency: T.Unknown(),
  projects: T.Unknown(),
  personalData: T.Unknown({ description: 'the rule and the datasets tagged personal-data' }),
  storageLocations: T.Unknown(),
  processingLocations: T.Unknown(),
  subprocessors: T.Unknown(),
  retention: T.Unknown(),
  access: T.Unknown(),
  notes: T.Array(T.String()),
});
const Annex = T.Object({ document: AnnexXiDocument, signature: Signature }, { $id: 'AnnexXiSigned' });
const Gdpr = T.Object({ document: GdprDocument, signature: Signature }, { $id: 'GdprArt30Signed' });

function send(reply: FastifyReply, r: Rendered) {
  return reply.type(r.contentType).send(r.body);
}

export async function complianceRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const compliance = { registry: deps.registry, ...deps.compliance };
  const annex = async (
    params: { project: string; name: string; rev?: string },
    format: DocumentFormat | undefined,
    reply: FastifyReply,
    ctx: Ctx,
  ) => {
    const id = parseRepoId(params.project, params.name);
    const signed = await generateAnnexXi(ctx, compliance, id, params.rev ?? 'main');
    // JSON through the declared schema; Markdown and PDF as they are rendered.
    return (format ?? 'json') === 'json' ? reply.send(signed) : send(reply, await renderAnnexXi(signed, format!));
  };
  const ModelParams = T.Object({ project: T.String({ maxLength: 200 }), name: S.RepoName });
  r.get(
    '/compliance/annex-xi/:project/:name',
    {
      schema: {
        tags: ['compliance'],
        summary: 'EU AI Act Annex XI documentation of a model version (main), signed and audited',
        params: ModelParams,
        querystring: Format,
        response: { 200: Annex, ...errors },
      },
    },
    async (req, reply) => annex(req.params, req.query.format, reply, ctxOf(req, deps)),
  );
  r.get(
    '/compliance/annex-xi/:project/:name/:rev',
    {
      schema: {
        tags: ['compliance'],
        summary: 'EU AI Act Annex XI documentation of a model version, signed and audited',
        params: T.Object({ project: T.String({ maxLength: 200 }), name: S.RepoName, rev: S.Revision }),
        querystring: Format,
        response: { 200: Annex, ...errors },
      },
    },
    async (req, reply) => annex(req.params, req.query.format, reply, ctxOf(req, deps)),
  );
  r.get(
    '/orgs/:org/compliance/gdpr-art30',
    {
      schema: {
        tags: ['compliance'],
        summary: 'GDPR Art. 30 records of processing of an org (its admins), signed and audited',
        params: T.Object({ org: S.DnsLabel }),
        querystring: Format,
        response: { 200: Gdpr, ...errors },
      },
    },
    async (req, reply) => {
      const signed = await generateGdprArt30(ctxOf(req, deps), compliance, req.params.org);
      const format = req.query.format ?? 'json';
      return format === 'json' ? reply.send(signed) : send(reply, await renderGdprArt30(signed, format));
    },
  );
}
