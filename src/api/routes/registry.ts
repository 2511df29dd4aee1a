// Routes for the model and dataset registry under /api/v1 (the Hub protocol lives under /hub):
// repos of a project, their versions (manifest, card, formats, signature and its verdict), tags,
// countersignatures, lineage, the platform's signing key and the projects' storage quotas.
// The same routes for models and datasets. Without a registry, every route answers 503.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type as T } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { AppError } from '../../domain/errors.js';
import { lineageOf } from '../../registry/lineage.js';
import { parseRepoId } from '../../registry/names.js';
import type { Registry } from '../../registry/registry.js';
import { createRepo, deleteRepo, deleteTag, setTag } from '../../registry/repos.js';
import { setStorageQuota, storageUsage } from '../../registry/storage-quota.js';
import {
  countersignVersion,
  describeRepo,
  listRepoSummaries,
  listVersions,
  versionDetail,
} from '../../registry/views.js';
import type { RepoKind } from '../../store/schema.js';
import { type RouteDeps, ctxOf } from '../context.js';
import * as S from '../schemas.js';

const errors = { '4xx': S.ErrorBody, 503: S.ErrorBody };
const Project = T.String({ maxLength: 200, description: 'org.project' });
const ProjectParams = T.Object({ project: Project });
const RepoParams = T.Object({ project: Project, name: S.RepoName });
const VersionParams = T.Object({ project: Project, name: S.RepoName, rev: S.Revision });
const RefParams = T.Object({ project: Project, name: S.RepoName, ref: S.Revision });

const KINDS: readonly { kind: RepoKind; path: string }[] = [
  { kind: 'model', path: 'models' },
  { kind: 'dataset', path: 'datasets' },
];

export const SIGNING_FORMAT = 'DSSE in-toto model-signing v1.0';

function registryOf(deps: RouteDeps): Registry {
  if (!deps.registry) throw new AppError('UNAVAILABLE', 'this server runs without a model and dataset registry');
  return deps.registry;
}

export async function registryRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  for (const { kind, path } of KINDS) {
    const base = `/projects/:project/${path}`;
    const tags = ['registry'];
    const idOf = (p: { project: string; name: string }) => parseRepoId(p.project, p.name);

    r.get(
      base,
      {
        schema: {
          tags,
          summary: `The ${kind}s of a project, with their latest versions`,
          params: ProjectParams,
          querystring: S.PageQuery,
          response: { 200: S.pageOf(S.RepoListItem), ...errors },
        },
      },
      async (req) => {
        registryOf(deps);
        return listRepoSummaries(ctxOf(req, deps), req.params.project, kind, req.query);
      },
    );
    r.post(
      base,
      {
        config: { idempotent: 201 },
        schema: {
          tags,
          summary: `Create a ${kind} (members); its first version comes with a push`,
          params: ProjectParams,
          body: S.RepoCreate,
          response: { 201: S.Repo, ...errors },
        },
      },
      async (req, reply) => {
        registryOf(deps);
        const id = parseRepoId(req.params.project, req.body.name);
        const repo = await createRepo(ctxOf(req, deps), kind, id);
        reply.status(201);
        return repo;
      },
    );
    r.get(
      `${base}/:name`,
      {
        schema: {
          tags,
          summary: `A ${kind}: refs, latest version, model card, formats and storage`,
          params: RepoParams,
          response: { 200: S.RepoDetail, ...errors },
        },
      },
      async (req) => {
        registryOf(deps);
        return describeRepo(ctxOf(req, deps), kind, idOf(req.params));
      },
    );
    r.delete(
      `${base}/:name`,
      {
        schema: {
          tags,
          summary: `Delete a ${kind} (admins): gone for clients at once, its versions purged after the retention`,
          params: RepoParams,
          response: { 204: T.Null(), ...errors },
        },
      },
      async (req, reply) => {
        await deleteRepo(ctxOf(req, deps), registryOf(deps), kind, idOf(req.params));
        reply.status(204).send(null);
      },
    );
    r.get(
      `${base}/:name/versions`,
      {
        schema: {
          tags,
          summary: `Versions of a ${kind}, newest first`,
          params: RepoParams,
          querystring: S.PageQuery,
          response: { 200: S.pageOf(S.VersionSummary), ...errors },
        },
      },
      async (req) => {
        registryOf(deps);
        return listVersions(ctxOf(req, deps), kind, idOf(req.params), req.query);
      },
    );
    r.get(
      `${base}/:name/versions/:rev`,
      {
        schema: {
          tags,
          summary: `A version of a ${kind}: manifest, card, formats, DSSE envelope and the server's verdict`,
          params: VersionParams,
          response: { 200: S.VersionDetail, ...errors },
        },
      },
      async (req) => versionDetail(ctxOf(req, deps), registryOf(deps), kind, idOf(req.params), req.params.rev),
    );
    r.post(
      `${base}/:name/versions/:rev/signatures`,
      {
        config: { idempotent: 201 },
        schema: {
          tags,
          summary: `Countersign a version of a ${kind} (members): an Ed25519 signature over the envelope's DSSE PAE`,
          params: VersionParams,
          body: S.Countersign,
          response: { 201: S.VersionVerification, ...errors },
        },
      },
      async (req, reply) => {
        const out = await countersignVersion(
          ctxOf(req, deps),
          registryOf(deps),
          kind,
          idOf(req.params),
          req.params.rev,
          req.body,
        );
        reply.status(201);
        return out;
      },
    );
    r.get(
      `${base}/:name/versions/:rev/lineage`,
      {
        schema: {
          tags,
          summary: `What a version of a ${kind} came from (up) and what came of it (down)`,
          params: VersionParams,
          querystring: S.LineageQuery,
          response: { 200: S.Lineage, ...errors },
        },
      },
      async (req) => {
        registryOf(deps);
        return lineageOf(ctxOf(req, deps), kind, idOf(req.params), req.params.rev, req.query);
      },
    );
    r.put(
      `${base}/:name/refs/:ref`,
      {
        schema: {
          tags,
          summary: `Point a tag at a version of a ${kind} (members tag; moving a tag takes an admin)`,
          params: RefParams,
          body: S.RefPut,
          response: { 200: S.Ref, ...errors },
        },
      },
      async (req) => {
        registryOf(deps);
        return setTag(ctxOf(req, deps), kind, idOf(req.params), req.params.ref, req.body.revision);
      },
    );
    r.delete(
      `${base}/:name/refs/:ref`,
      {
        schema: {
          tags,
          summary: `Delete a tag of a ${kind} (admins); branches stay`,
          params: RefParams,
          response: { 204: T.Null(), ...errors },
        },
      },
      async (req, reply) => {
        registryOf(deps);
        await deleteTag(ctxOf(req, deps), kind, idOf(req.params), req.params.ref);
        reply.status(204).send(null);
      },
    );
  }

  r.get(
    '/registry/signing-key',
    {
      config: { auth: false },
      schema: {
        tags: ['registry'],
        summary: "The platform's public key that signs every version (no API key needed)",
        response: { 200: S.SigningKeyInfo, 503: S.ErrorBody },
      },
    },
    async () => {
      const { signer } = registryOf(deps);
      return {
        keyid: signer.keyid,
        publicKeyPem: signer.publicKeyPem,
        algorithm: 'ed25519' as const,
        format: SIGNING_FORMAT,
      };
    },
  );
  r.get(
    '/projects/:project/storage-quota',
    {
      schema: {
        tags: ['registry'],
        summary: "A project's registry storage: limit, bytes stored and being uploaded",
        params: ProjectParams,
        response: { 200: S.StorageUsage, ...errors },
      },
    },
    async (req) => storageUsage(ctxOf(req, deps), registryOf(deps), req.params.project),
  );
  r.put(
    '/projects/:project/storage-quota',
    {
      schema: {
        tags: ['registry'],
        summary: "Set a project's registry storage quota in bytes (operators); null: the server's default",
        params: ProjectParams,
        body: S.StorageQuotaSet,
        response: { 200: S.StorageUsage, ...errors },
      },
    },
    async (req) => setStorageQuota(ctxOf(req, deps), registryOf(deps), req.params.project, req.body.limitBytes),
  );
}
