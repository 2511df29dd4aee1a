// The cross-tenant matrix. Org A (acme) and org B (globex) share one control plane. For every
// route that /openapi.json lists, a key of B aimed at A's resources (A's org name, project refs
// and ids, key prefixes and ids, member and service account names) gets 404, exactly as if the
// resource did not exist, or 403 where every non-operator gets 403 (platform routes). Nothing is
// written, B's listings hold nothing of A, and B's errors name nothing of A that B did not send.
// Inside A: a viewer's mutations get 403 and a project-scoped key finds no other project.
// The app runs with a registry, and A has models and datasets with versions pushed through the
// Hub protocol, so that the registry's REST routes have something of A's to hide. It serves the
// deployment routes too: A has an external deployment in each project, inference limits (its
// projects' and its owner key's) and a minute of token usage per deployment. And it serves the
// verifiable audit log: before the matrix runs, every entry of the seeding is integrated and signed,
// so that receipts of A's entries exist for B to ask for. Metering: A has an hour of usage rollups
// in each project, a budget on each, and prices on its deployments (beside a platform-wide one).
// Console sessions: A's owner, A's scoped key and B's owner each signed in (cookie); a probe may
// be sent as a browser, with cookies and the CSRF header instead of a key.
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as hub from '@huggingface/hub';
import { openCheckpoint } from '../../src/audit/checkpoint.js';
import { Sequencer } from '../../src/audit/log/sequencer.js';
import { logKeys } from '../../src/audit/log/keys.js';
import { leafHash } from '../../src/audit/merkle/hash.js';
import { verifyConsistency, verifyInclusion } from '../../src/audit/merkle/tree.js';
import { newId } from '../../src/domain/ids.js';
import { locateReplicaRuntime } from '../../src/inference/replica-spec.js';
import { keyIdOf, pae } from '../../src/registry/signing.js';
import {
  DIALECTS,
  OPERATOR_TOKEN,
  type Reply,
  SMALL_FLEET,
  type TestApp,
  type Tenant,
  seedTenant,
  skipReason,
  startTestApp,
} from '../helpers/harness.js';
import { type StateSnapshot, snapshotState, stateDiff } from '../helpers/state.js';

/** A's resources, as B might name them. */
interface Fixture {
  readonly a: Tenant;
  readonly b: Tenant;
  readonly aOrgId: string;
  readonly aTrainId: string;
  readonly aResearchId: string;
  /** A's owner key (org-wide). */
  readonly aOwnerKey: { id: string; prefix: string };
  /** A's workloads: `finetune` in acme.train, `survey` in acme.research. */
  readonly aTrainJobId: string;
  readonly aResearchJobId: string;
  /** A's webhook subscription. */
  readonly aWebhookId: string;
  /** An operator's break-glass grant on A. */
  readonly aBreakGlassId: string;
  /** A key of A's service account `trainer`, scoped to the project acme.train. */
  readonly aScopedKey: { id: string; prefix: string; token: string };
  /**
   * A's registry, per URL kind: a repo in acme.train with one version (pushed with the Hub
   * client), tagged `golden`, and a valid countersignature of that version by a new key. A's
   * project acme.research holds a repo `probe-net` of each kind, without versions.
   */
  readonly aRepos: Readonly<Record<RegistryPath, RegistryRepo>>;
  /** Everything of A that B must never see unless B itself sent it: ids and names. */
  readonly aSecrets: readonly string[];
  /** A's identifiers and stand-ins that exist nowhere: B must not tell them apart. */
  readonly ghosts: readonly (readonly [string, string])[];
  /** Only A's project `research` and stand-ins, for A's own project-scoped key. */
  readonly researchGhosts: readonly (readonly [string, string])[];
  /** The audit log, flushed after the seeding: its size, the newest checkpoint, and entries by seq. */
  readonly audit: {
    readonly size: number;
    readonly checkpoint: string;
    /** An entry of A's (its org, org-wide), one about acme.train, one of B's, and a platform one (org ''). */
    readonly aSeq: number;
    readonly aTrainSeq: number;
    readonly bSeq: number;
    readonly platformSeq: number;
  };
  /** Operator-set prices of A's deployments (tokens-out in acme.train, tokens-in in acme.research). */
  readonly aTrainPriceId: string;
  readonly aResearchPriceId: string;
  /** Console sessions opened with POST /session: A's owner's, A's scoped key's, B's owner's. */
  readonly aSession: ConsoleSession;
  readonly aScopedSession: ConsoleSession;
  readonly bSession: ConsoleSession;
}

/** A console session as a browser holds it: the cookie's value and the CSRF token it echoes. */
interface ConsoleSession {
  readonly token: string;
  readonly csrf: string;
}

/**
 * 400: refused for what the request says alone, before anything is looked up (another org's model
 * named in B's deployment), so A's resource and a stand-in get the same answer; the twin checks it.
 * 401: the console's session routes only, asked without a session (a bearer key is none) or with a
 * key or cookie that is none: they answer every caller alike.
 */
type Expect = 404 | 403 | 400 | 401 | 'listing';

type RegistryPath = 'models' | 'datasets';
interface RegistryRepo {
  readonly name: string;
  readonly commit: string;
  readonly countersign: { keyid: string; sig: string; publicKeyPem: string };
}
/** A's repo in acme.research, of each kind. */
const RESEARCH_REPO = 'probe-net';
/** A's deployments: one in acme.train, one in acme.research (its name says so, for the scoped listings). */
const TRAIN_DEPLOYMENT = 'sovereign-chat';
const RESEARCH_DEPLOYMENT = 'research-chat';

interface Probe {
  readonly url: string;
  readonly expect: Expect;
  readonly body?: unknown;
  /** Why this answer, where it is not the obvious one. */
  readonly note?: string;
  /**
   * Stand-ins for the twin, before the fixture's: for what a global substitution cannot take, such
   * as an audit entry's seq (a number, so only this probe's URL may have it swapped).
   */
  readonly twin?: readonly (readonly [string, string])[];
  /**
   * Sent as the console would: no Authorization header, these headers instead (the session
   * cookie, the CSRF token). The twin swaps stand-ins in them too.
   */
  readonly browser?: Readonly<Record<string, string>>;
}

interface RouteCases {
  /** B's owner key on A's resources (every route). */
  readonly crossTenant: (f: Fixture) => Probe[];
  /** A's viewer key on A's resources (every mutating route). */
  readonly viewer?: (f: Fixture) => Probe[];
  /** A's key scoped to acme.train on A's other project (routes that address projects). */
  readonly scoped?: (f: Fixture) => Probe[];
}

const API = '/api/v1';
const p = (url: string, expect: Expect, body?: unknown, note?: string): Probe => ({
  url: `${API}${url}`,
  expect,
  body,
  note,
});
/** A workload spec that fits SMALL_FLEET's b200 pool. */
const job = (name: string) => ({
  kind: 'training',
  name,
  resources: { gpu: 'B200:8', nodes: 1 },
  max_duration: '2h',
  run: 'python train.py',
});
const operatorOnly = 'operator-only: every non-operator gets 403, so 403 says nothing about A';
/** An audit entry's seq that does not exist (the log holds a few hundred entries). */
const GHOST_SEQ = '987654321';
/**
 * A receipt of entry `seq`, its twin the receipt of an entry that does not exist. The seq has two
 * digits or more (the fixture checks), so swapping it touches nothing else of the URL (`/api/v1`).
 */
const receipt = (seq: number, expect: Expect, note?: string, query = ''): Probe => ({
  ...p(`/audit/entries/${seq}/receipt${query}`, expect, undefined, note),
  twin: [[String(seq), GHOST_SEQ]],
});
/** A public route of the audit log (outside /api/v1): the same for every caller, key or none. */
const pub = (url: string, expect: Expect, body?: unknown, note?: string): Probe => ({ url, expect, body, note });
const sameForAll = 'public: hashes and signatures only, the same for every caller';
/** The probe, sent by a browser holding this console session (and, for mutations, this CSRF token). */
const asBrowser = (probe: Probe, session: ConsoleSession | string, csrf?: string): Probe => ({
  ...probe,
  browser: {
    cookie: `fabrik_session=${typeof session === 'string' ? session : session.token}`,
    ...(csrf === undefined ? {} : { 'x-csrf-token': csrf }),
  },
});
/** An API key of this prefix whose secret is a guess (the form of a real one). */
const guessedKey = (prefix: string) => `fbk_${prefix}_${'G'.repeat(43)}`;
/** A session cookie of the right form that was never issued. */
const FORGED_SESSION = `fbs_${'F'.repeat(43)}`;
/** This month and an earlier one (YYYY-MM, UTC), for statements. */
const MONTH = new Date().toISOString().slice(0, 7);
const PAST_MONTH = '2026-01';
const noSession = 'a bearer key is no console session: every caller alike';
const noCosign = 'the log accepts no witness keys here: no cosignature verifies, whoever sends it';
/** A cosignature line of the right shape (C2SP tlog-cosignature) by a witness this log does not know. */
const strangerCosignature = `— witness.example/w1 ${Buffer.alloc(76, 7).toString('base64')}`;

/** A deployment of an external upstream: it needs no fleet and no model file. */
const ext = (name: string) => ({ name, runtime: 'external', upstreamUrl: 'http://127.0.0.1:9/v1' });

/**
 * The registry's routes of one kind (models or datasets): B's key on A's repos, versions and tags
 * gets 404, whether it names a version by branch, tag or commit id; A's viewer gets 403 on every
 * write (the role check comes before the signature or the revision is looked at), and the key
 * scoped to acme.train finds nothing in acme.research. Routes under a repo take project refs only
 * (a project id answers 400 for every caller, as a malformed repo namespace), so they are probed
 * by ref; the listing takes ids as well.
 */
function registryCases(path: RegistryPath): Record<string, RouteCases> {
  const base = `${API}/projects/{project}/${path}`;
  const repo = (f: Fixture) => f.aRepos[path];
  const mine = (f: Fixture, rest = '') => `/projects/acme.train/${path}/${repo(f).name}${rest}`;
  const research = (rest = '') => `/projects/acme.research/${path}/${RESEARCH_REPO}${rest}`;
  const underB = "A's repo name under B's project";
  return {
    [`GET ${base}`]: {
      crossTenant: (f) => [
        p(`/projects/acme.train/${path}`, 404),
        p(`/projects/${f.aTrainId}/${path}?limit=1`, 404),
        p(`/projects/acme.research/${path}`, 404),
        p(`/projects/globex.train/${path}`, 'listing'),
      ],
      scoped: (f) => [
        p(`/projects/acme.research/${path}`, 404),
        p(`/projects/${f.aResearchId}/${path}`, 404),
        p(`/projects/acme.train/${path}`, 'listing'),
      ],
    },
    [`POST ${base}`]: {
      crossTenant: (f) => [
        p(`/projects/acme.train/${path}`, 404, { name: 'planted' }),
        p(`/projects/acme.train/${path}`, 404, { name: repo(f).name }, 'a name A took: no 409'),
        p(`/projects/acme.research/${path}`, 404, { name: RESEARCH_REPO }, 'a name A took: no 409'),
      ],
      viewer: () => [p(`/projects/acme.train/${path}`, 403, { name: 'viewer-made' })],
      scoped: () => [p(`/projects/acme.research/${path}`, 404, { name: 'wider' })],
    },
    [`GET ${base}/{name}`]: {
      crossTenant: (f) => [
        p(mine(f), 404),
        p(research(), 404),
        p(`/projects/globex.train/${path}/${repo(f).name}`, 404, undefined, underB),
      ],
      scoped: () => [p(research(), 404)],
    },
    [`DELETE ${base}/{name}`]: {
      crossTenant: (f) => [
        p(mine(f), 404),
        p(research(), 404),
        p(`/projects/globex.train/${path}/${repo(f).name}`, 404, undefined, underB),
      ],
      viewer: (f) => [p(mine(f), 403)],
      scoped: () => [p(research(), 404)],
    },
    [`GET ${base}/{name}/versions`]: {
      crossTenant: (f) => [p(mine(f, '/versions'), 404), p(mine(f, '/versions?limit=1'), 404)],
      scoped: () => [p(research('/versions'), 404)],
    },
    [`GET ${base}/{name}/versions/{rev}`]: {
      crossTenant: (f) => [
        p(mine(f, '/versions/main'), 404),
        p(mine(f, `/versions/${repo(f).commit}`), 404),
        p(mine(f, '/versions/golden'), 404),
        p(`/projects/globex.train/${path}/${repo(f).name}/versions/${repo(f).commit}`, 404, undefined, underB),
      ],
      scoped: () => [p(research('/versions/main'), 404)],
    },
    [`POST ${base}/{name}/versions/{rev}/signatures`]: {
      crossTenant: (f) => [
        p(mine(f, '/versions/main/signatures'), 404, repo(f).countersign),
        p(mine(f, `/versions/${repo(f).commit}/signatures`), 404, repo(f).countersign),
      ],
      viewer: (f) => [p(mine(f, '/versions/main/signatures'), 403, repo(f).countersign, 'a valid countersignature')],
      scoped: (f) => [p(research('/versions/main/signatures'), 404, repo(f).countersign)],
    },
    [`GET ${base}/{name}/versions/{rev}/lineage`]: {
      crossTenant: (f) => [
        p(mine(f, '/versions/main/lineage'), 404),
        p(mine(f, `/versions/${repo(f).commit}/lineage?direction=up&depth=20`), 404),
      ],
      scoped: () => [p(research('/versions/main/lineage?direction=down'), 404)],
    },
    [`PUT ${base}/{name}/refs/{ref}`]: {
      crossTenant: (f) => [
        p(mine(f, '/refs/golden'), 404, { revision: 'main' }),
        p(mine(f, '/refs/planted'), 404, { revision: repo(f).commit }),
      ],
      viewer: (f) => [
        p(mine(f, '/refs/golden'), 403, { revision: 'main' }, 'moving a tag'),
        p(mine(f, '/refs/viewer-tag'), 403, { revision: repo(f).commit }, 'a new tag'),
      ],
      scoped: () => [p(research('/refs/wider'), 404, { revision: 'main' })],
    },
    [`DELETE ${base}/{name}/refs/{ref}`]: {
      crossTenant: (f) => [p(mine(f, '/refs/golden'), 404)],
      viewer: (f) => [p(mine(f, '/refs/golden'), 403)],
      scoped: () => [p(research('/refs/golden'), 404)],
    },
  };
}

/**
 * One entry per route of /openapi.json, keyed `METHOD /path`. A new route without an entry fails
 * the suite: decide what a foreign key gets from it before shipping it.
 */
const ROUTES: Record<string, RouteCases> = {
  'GET /api/v1/whoami': { crossTenant: () => [p('/whoami', 'listing')] },

  'POST /api/v1/orgs': {
    crossTenant: () => [p('/orgs', 403, { name: 'acme', residency: 'de' }, operatorOnly)],
    viewer: () => [p('/orgs', 403, { name: 'viewer-org', residency: 'de' })],
  },
  'GET /api/v1/orgs': { crossTenant: () => [p('/orgs', 'listing'), p('/orgs?limit=1', 'listing')] },
  'GET /api/v1/orgs/{org}': { crossTenant: () => [p('/orgs/acme', 404)] },
  'PATCH /api/v1/orgs/{org}': {
    crossTenant: () => [p('/orgs/acme', 404, { displayName: 'pwned' }), p('/orgs/acme', 404, { status: 'suspended' })],
    viewer: () => [p('/orgs/acme', 403, { displayName: 'renamed' }), p('/orgs/acme', 403, { residency: 'eu' })],
  },
  'DELETE /api/v1/orgs/{org}': {
    crossTenant: () => [p('/orgs/acme', 404)],
    viewer: () => [p('/orgs/acme', 403)],
  },

  'POST /api/v1/orgs/{org}/projects': {
    crossTenant: () => [p('/orgs/acme/projects', 404, { name: 'evil' })],
    viewer: () => [p('/orgs/acme/projects', 403, { name: 'viewers' })],
  },
  'GET /api/v1/orgs/{org}/projects': {
    crossTenant: () => [p('/orgs/acme/projects', 404), p('/orgs/globex/projects', 'listing')],
    scoped: () => [p('/orgs/acme/projects', 'listing')],
  },
  'GET /api/v1/projects/{project}': {
    crossTenant: (f) => [
      p('/projects/acme.train', 404),
      p('/projects/acme.research', 404),
      p(`/projects/${f.aTrainId}`, 404),
      p('/projects/globex.research', 404, undefined, "A's project name under B's org"),
    ],
    scoped: (f) => [p('/projects/acme.research', 404), p(`/projects/${f.aResearchId}`, 404)],
  },
  'PATCH /api/v1/projects/{project}': {
    crossTenant: (f) => [
      p('/projects/acme.train', 404, { displayName: 'pwned' }),
      p(`/projects/${f.aResearchId}`, 404, { displayName: 'pwned' }),
    ],
    viewer: () => [p('/projects/acme.train', 403, { displayName: 'renamed' })],
    scoped: (f) => [
      p('/projects/acme.research', 404, { displayName: 'x' }),
      p(`/projects/${f.aResearchId}`, 404, { displayName: 'x' }),
    ],
  },
  'DELETE /api/v1/projects/{project}': {
    crossTenant: (f) => [p('/projects/acme.research', 404), p(`/projects/${f.aResearchId}`, 404)],
    viewer: () => [p('/projects/acme.research', 403)],
    scoped: (f) => [p('/projects/acme.research', 404), p(`/projects/${f.aResearchId}`, 404)],
  },

  'POST /api/v1/users': {
    crossTenant: () => [p('/users', 403, { name: 'acme-dev' }, operatorOnly)],
    viewer: () => [p('/users', 403, { name: 'viewer-made' })],
  },
  'GET /api/v1/users': { crossTenant: () => [p('/users', 403, undefined, operatorOnly)] },

  'POST /api/v1/orgs/{org}/serviceaccounts': {
    crossTenant: () => [
      p('/orgs/acme/serviceaccounts', 404, { name: 'evil', role: 'owner' }),
      p(
        '/orgs/globex/serviceaccounts',
        404,
        { name: 'evil', role: 'viewer', project: 'research' },
        "A's project name in B's org",
      ),
    ],
    viewer: () => [p('/orgs/acme/serviceaccounts', 403, { name: 'bot', role: 'viewer' })],
    scoped: () => [
      p(
        '/orgs/acme/serviceaccounts',
        403,
        { name: 'bot', role: 'viewer', project: 'research' },
        'needs an org-wide admin role before any lookup',
      ),
    ],
  },
  'GET /api/v1/orgs/{org}/serviceaccounts': {
    crossTenant: () => [p('/orgs/acme/serviceaccounts', 404), p('/orgs/globex/serviceaccounts', 'listing')],
  },
  'POST /api/v1/orgs/{org}/members': {
    crossTenant: () => [
      p('/orgs/acme/members', 404, { user: 'globex-owner', role: 'owner' }, 'B adding itself to A'),
      p('/orgs/globex/members', 404, { serviceAccount: 'trainer', role: 'viewer' }, "A's service account in B's org"),
      p(
        '/orgs/globex/members',
        404,
        { user: 'globex-newbie', role: 'viewer', project: 'research' },
        "A's project name in B's org",
      ),
    ],
    viewer: () => [p('/orgs/acme/members', 403, { user: 'globex-owner', role: 'viewer' })],
    scoped: () => [
      p(
        '/orgs/acme/members',
        403,
        { user: 'someone', role: 'viewer', project: 'research' },
        'needs an org-wide admin role before any lookup',
      ),
    ],
  },
  'GET /api/v1/orgs/{org}/members': {
    crossTenant: () => [p('/orgs/acme/members', 404), p('/orgs/globex/members', 'listing')],
  },
  'DELETE /api/v1/orgs/{org}/members/{member}': {
    crossTenant: () => [
      p('/orgs/acme/members/user:acme-viewer', 404),
      p('/orgs/acme/members/serviceaccount:trainer', 404),
      p('/orgs/globex/members/user:acme-dev', 404, undefined, "A's user is no member of B: same as no such user"),
      p('/orgs/globex/members/serviceaccount:trainer', 404, undefined, "A's service account in B's org"),
      p('/orgs/globex/members/user:globex-viewer?project=research', 404, undefined, "A's project name in B's org"),
    ],
    viewer: () => [p('/orgs/acme/members/user:acme-dev', 403)],
    scoped: () => [
      p(
        '/orgs/acme/members/user:acme-dev?project=research',
        403,
        undefined,
        'needs an org-wide admin role before any lookup',
      ),
    ],
  },

  'POST /api/v1/orgs/{org}/keys': {
    crossTenant: () => [
      p('/orgs/acme/keys', 404, { name: 'evil' }),
      p('/orgs/acme/keys', 404, { name: 'evil', user: 'acme-owner' }),
      p('/orgs/globex/keys', 404, { name: 'evil', serviceAccount: 'trainer' }, "A's service account in B's org"),
      p(
        '/orgs/globex/keys',
        404,
        { name: 'evil', user: 'acme-dev' },
        "A's user is no member of B: same as no such user",
      ),
      p('/orgs/globex/keys', 404, { name: 'evil', project: 'research' }, "A's project name in B's org"),
    ],
    viewer: () => [p('/orgs/acme/keys', 403, { name: 'for-dev', user: 'acme-dev' })],
    scoped: () => [
      p(
        '/orgs/acme/keys',
        404,
        { name: 'wider', project: 'research' },
        'a project the key cannot see does not exist for it',
      ),
    ],
  },
  'GET /api/v1/orgs/{org}/keys': {
    crossTenant: () => [p('/orgs/acme/keys', 404), p('/orgs/globex/keys', 'listing')],
  },
  'DELETE /api/v1/orgs/{org}/keys/{key}': {
    crossTenant: (f) => [
      p(`/orgs/acme/keys/${f.aOwnerKey.prefix}`, 404),
      p(`/orgs/acme/keys/${f.aScopedKey.id}`, 404),
      p(`/orgs/globex/keys/${f.aScopedKey.prefix}`, 404, undefined, "A's key under B's org"),
      p(`/orgs/globex/keys/${f.aOwnerKey.id}`, 404, undefined, "A's key under B's org"),
    ],
    viewer: (f) => [
      p(
        `/orgs/acme/keys/${f.aOwnerKey.prefix}`,
        404,
        undefined,
        "others' keys are invisible to non-admins, in listings and here",
      ),
    ],
  },
  'POST /api/v1/keys': {
    crossTenant: () => [p('/keys', 403, { name: 'evil', user: 'acme-owner' }, operatorOnly)],
    viewer: () => [p('/keys', 403, { name: 'platform', user: 'acme-viewer' })],
  },
  'GET /api/v1/keys': { crossTenant: () => [p('/keys', 403, undefined, operatorOnly)] },
  'DELETE /api/v1/keys/{key}': {
    crossTenant: (f) => [p(`/keys/${f.aOwnerKey.prefix}`, 403, undefined, operatorOnly)],
    viewer: (f) => [p(`/keys/${f.aOwnerKey.prefix}`, 403)],
  },

  'GET /api/v1/projects/{project}/quotas': {
    crossTenant: (f) => [p('/projects/acme.train/quotas', 404), p(`/projects/${f.aResearchId}/quotas`, 404)],
    scoped: (f) => [p('/projects/acme.research/quotas', 404), p(`/projects/${f.aResearchId}/quotas`, 404)],
  },
  'PUT /api/v1/projects/{project}/quotas/{pool}': {
    crossTenant: (f) => [
      p('/projects/acme.train/quotas/b200', 404, { guaranteed: 0, limit: 0 }),
      p(`/projects/${f.aResearchId}/quotas/rtxpro6000`, 404, { guaranteed: 0, limit: 0 }),
    ],
    viewer: () => [p('/projects/acme.train/quotas/b200', 403, { guaranteed: 16, limit: 16 })],
    scoped: () => [p('/projects/acme.research/quotas/rtxpro6000', 404, { guaranteed: 0, limit: 0 })],
  },
  'DELETE /api/v1/projects/{project}/quotas/{pool}': {
    crossTenant: (f) => [
      p('/projects/acme.research/quotas/rtxpro6000', 404),
      p(`/projects/${f.aTrainId}/quotas/b200`, 404),
    ],
    viewer: () => [p('/projects/acme.train/quotas/b200', 403)],
    scoped: () => [p('/projects/acme.research/quotas/rtxpro6000', 404)],
  },
  'GET /api/v1/quotas': {
    crossTenant: () => [p('/quotas?org=acme', 404), p('/quotas', 'listing'), p('/quotas?pool=rtxpro6000', 'listing')],
    scoped: () => [p('/quotas', 'listing'), p('/quotas?org=acme', 'listing')],
  },

  'POST /api/v1/fleet/apply': {
    crossTenant: () => [p('/fleet/apply', 403, { file: SMALL_FLEET, prune: true }, operatorOnly)],
    viewer: () => [p('/fleet/apply', 403, { file: SMALL_FLEET })],
  },
  'GET /api/v1/fleet/pools': { crossTenant: () => [p('/fleet/pools', 'listing')] },
  'GET /api/v1/fleet/nodes': { crossTenant: () => [p('/fleet/nodes', 403, undefined, operatorOnly)] },
  'GET /api/v1/fleet/nodes/{node}': { crossTenant: () => [p('/fleet/nodes/b200-01', 403, undefined, operatorOnly)] },
  'PATCH /api/v1/fleet/nodes/{node}': {
    crossTenant: () => [p('/fleet/nodes/b200-01', 403, { state: 'down' }, operatorOnly)],
    viewer: () => [p('/fleet/nodes/b200-01', 403, { state: 'down' })],
  },
  'POST /api/v1/fleet/nodes/{node}/cordon': {
    crossTenant: () => [p('/fleet/nodes/b200-01/cordon', 403, undefined, operatorOnly)],
    viewer: () => [p('/fleet/nodes/b200-01/cordon', 403)],
  },
  'POST /api/v1/fleet/nodes/{node}/drain': {
    crossTenant: () => [p('/fleet/nodes/b200-01/drain', 403, undefined, operatorOnly)],
    viewer: () => [p('/fleet/nodes/b200-01/drain', 403)],
  },
  'POST /api/v1/fleet/nodes/{node}/uncordon': {
    crossTenant: () => [p('/fleet/nodes/b200-01/uncordon', 403, undefined, operatorOnly)],
    viewer: () => [p('/fleet/nodes/b200-01/uncordon', 403)],
  },

  'POST /api/v1/projects/{project}/workloads': {
    crossTenant: (f) => [
      p('/projects/acme.train/workloads', 404, job('evil')),
      p(`/projects/${f.aTrainId}/workloads`, 404, job('evil')),
    ],
    viewer: () => [p('/projects/acme.train/workloads', 403, job('viewer-job'))],
    scoped: (f) => [
      p('/projects/acme.research/workloads', 404, job('wider')),
      p(`/projects/${f.aResearchId}/workloads`, 404, job('wider')),
    ],
  },
  'GET /api/v1/projects/{project}/workloads': {
    crossTenant: (f) => [
      p('/projects/acme.train/workloads', 404),
      p(`/projects/${f.aResearchId}/workloads?all=true`, 404),
      p('/projects/globex.train/workloads?all=true', 'listing'),
    ],
    scoped: () => [
      p('/projects/acme.research/workloads', 404),
      p('/projects/acme.train/workloads?all=true', 'listing'),
    ],
  },
  'GET /api/v1/workloads': {
    crossTenant: () => [
      p('/workloads', 'listing'),
      p('/workloads?all=true', 'listing'),
      p('/workloads?status=pending', 'listing'),
    ],
    scoped: () => [p('/workloads?all=true', 'listing')],
  },
  'GET /api/v1/projects/{project}/workloads/{workload}': {
    crossTenant: (f) => [
      p('/projects/acme.train/workloads/finetune', 404),
      p(`/projects/acme.train/workloads/${f.aTrainJobId}`, 404),
      p(`/projects/globex.train/workloads/${f.aTrainJobId}`, 404, undefined, "A's workload under B's project"),
      p('/projects/globex.train/workloads/finetune', 404, undefined, "A's workload name under B's project"),
    ],
    scoped: (f) => [
      p('/projects/acme.research/workloads/survey', 404),
      p(
        `/projects/acme.train/workloads/${f.aResearchJobId}`,
        404,
        undefined,
        'a workload of the other project under this one',
      ),
    ],
  },
  'GET /api/v1/projects/{project}/workloads/{workload}/logs': {
    crossTenant: (f) => [
      p('/projects/acme.train/workloads/finetune/logs', 404),
      p(`/projects/${f.aTrainId}/workloads/${f.aTrainJobId}/logs?tail=10`, 404),
      p(`/projects/globex.train/workloads/${f.aTrainJobId}/logs`, 404, undefined, "A's workload under B's project"),
    ],
    scoped: (f) => [
      p('/projects/acme.research/workloads/survey/logs', 404),
      p(
        `/projects/acme.train/workloads/${f.aResearchJobId}/logs`,
        404,
        undefined,
        'a workload of the other project under this one',
      ),
    ],
  },
  'POST /api/v1/projects/{project}/workloads/{workload}/cancel': {
    crossTenant: (f) => [
      p(`/projects/acme.train/workloads/${f.aTrainJobId}/cancel`, 404),
      p(`/projects/${f.aResearchId}/workloads/survey/cancel`, 404),
      p(`/projects/globex.train/workloads/${f.aTrainJobId}/cancel`, 404, undefined, "A's workload under B's project"),
    ],
    viewer: () => [p('/projects/acme.train/workloads/finetune/cancel', 403)],
    scoped: (f) => [
      p(`/projects/acme.research/workloads/${f.aResearchJobId}/cancel`, 404),
      p('/projects/acme.train/workloads/survey/cancel', 404),
    ],
  },

  'PUT /api/v1/orgs/{org}/secrets/{name}': {
    crossTenant: () => [p('/orgs/acme/secrets/wandb', 404, { value: 'planted-by-b' })],
    viewer: () => [p('/orgs/acme/secrets/wandb', 403, { value: 'planted-by-viewer' })],
  },
  'GET /api/v1/orgs/{org}/secrets': {
    crossTenant: () => [p('/orgs/acme/secrets', 404), p('/orgs/globex/secrets', 'listing')],
  },
  'DELETE /api/v1/orgs/{org}/secrets/{name}': {
    crossTenant: () => [p('/orgs/acme/secrets/wandb', 404)],
    viewer: () => [p('/orgs/acme/secrets/wandb', 403)],
  },
  'PUT /api/v1/projects/{project}/secrets/{name}': {
    crossTenant: (f) => [
      p('/projects/acme.train/secrets/wandb', 404, { value: 'planted-by-b' }),
      p(`/projects/${f.aResearchId}/secrets/wandb`, 404, { value: 'planted-by-b' }),
    ],
    viewer: () => [p('/projects/acme.train/secrets/wandb', 403, { value: 'planted-by-viewer' })],
    scoped: (f) => [
      p('/projects/acme.research/secrets/wandb', 404, { value: 'x' }),
      p(`/projects/${f.aResearchId}/secrets/wandb`, 404, { value: 'x' }),
    ],
  },
  'GET /api/v1/projects/{project}/secrets': {
    crossTenant: (f) => [
      p('/projects/acme.train/secrets', 404),
      p(`/projects/${f.aResearchId}/secrets`, 404),
      p('/projects/globex.train/secrets', 'listing'),
    ],
    scoped: (f) => [p('/projects/acme.research/secrets', 404), p(`/projects/${f.aResearchId}/secrets`, 404)],
  },
  'DELETE /api/v1/projects/{project}/secrets/{name}': {
    crossTenant: (f) => [p('/projects/acme.train/secrets/wandb', 404), p(`/projects/${f.aTrainId}/secrets/wandb`, 404)],
    viewer: () => [p('/projects/acme.train/secrets/wandb', 403)],
    scoped: () => [p('/projects/acme.research/secrets/wandb', 404)],
  },

  'POST /api/v1/orgs/{org}/break-glass': {
    crossTenant: () => [
      p('/orgs/acme/break-glass', 404, { reason: 'planted by globex, no reason', expiresIn: '1h' }),
      p('/orgs/globex/break-glass', 403, { reason: 'an owner is no operator', expiresIn: '1h' }, operatorOnly),
    ],
    viewer: () => [p('/orgs/acme/break-glass', 403, { reason: 'viewers are no operators', expiresIn: '1h' })],
  },
  'GET /api/v1/orgs/{org}/break-glass': {
    crossTenant: () => [p('/orgs/acme/break-glass', 404), p('/orgs/globex/break-glass?limit=1', 'listing')],
  },
  'DELETE /api/v1/orgs/{org}/break-glass/{id}': {
    crossTenant: (f) => [
      p(`/orgs/acme/break-glass/${f.aBreakGlassId}`, 404),
      p(`/orgs/globex/break-glass/${f.aBreakGlassId}`, 404, undefined, "A's grant under B's org"),
    ],
    viewer: (f) => [p(`/orgs/acme/break-glass/${f.aBreakGlassId}`, 403)],
  },

  'GET /api/v1/events': {
    crossTenant: () => [
      p('/events', 'listing'),
      p('/events?after=0&limit=1000', 'listing'),
      p('/events?types=project.created,workload.*', 'listing'),
      p('/events?wait=0', 'listing'),
    ],
    scoped: () => [p('/events?limit=1000', 'listing'), p('/events?types=project.*', 'listing')],
  },
  'GET /api/v1/events/stream': {
    crossTenant: () => [p('/events/stream?timeout=1', 'listing')],
    scoped: () => [p('/events/stream?timeout=1&after=0', 'listing')],
  },

  'POST /api/v1/orgs/{org}/webhooks': {
    crossTenant: () => [p('/orgs/acme/webhooks', 404, { url: 'https://evil.example/hook' })],
    viewer: () => [p('/orgs/acme/webhooks', 403, { url: 'https://viewer.example/hook' })],
    scoped: () => [
      p('/orgs/acme/webhooks', 403, { url: 'https://scoped.example/hook' }, 'needs an org-wide admin role'),
    ],
  },
  'GET /api/v1/orgs/{org}/webhooks': {
    crossTenant: () => [p('/orgs/acme/webhooks', 404), p('/orgs/globex/webhooks', 'listing')],
  },
  'GET /api/v1/orgs/{org}/webhooks/{webhook}': {
    crossTenant: (f) => [
      p(`/orgs/acme/webhooks/${f.aWebhookId}`, 404),
      p(`/orgs/globex/webhooks/${f.aWebhookId}`, 404, undefined, "A's webhook under B's org"),
    ],
  },
  'DELETE /api/v1/orgs/{org}/webhooks/{webhook}': {
    crossTenant: (f) => [
      p(`/orgs/acme/webhooks/${f.aWebhookId}`, 404),
      p(`/orgs/globex/webhooks/${f.aWebhookId}`, 404, undefined, "A's webhook under B's org"),
    ],
    viewer: (f) => [p(`/orgs/acme/webhooks/${f.aWebhookId}`, 403)],
  },
  'GET /api/v1/orgs/{org}/webhooks/{webhook}/deliveries': {
    crossTenant: (f) => [
      p(`/orgs/acme/webhooks/${f.aWebhookId}/deliveries`, 404),
      p(`/orgs/globex/webhooks/${f.aWebhookId}/deliveries?status=failed`, 404, undefined, "A's webhook under B's org"),
    ],
  },

  'GET /api/v1/audit/entries': {
    crossTenant: () => [
      p('/audit/entries?org=acme', 404),
      p('/audit/entries?limit=1000', 'listing'),
      p('/audit/entries?resource=orgs/acme', 'listing'),
      p('/audit/entries?action=project.create', 'listing'),
    ],
    scoped: () => [p('/audit/entries?resource=orgs/acme/projects/research', 'listing')],
  },

  // The verifiable audit log. A receipt is visible like the entry in the audit trail: operators
  // see all, an org's org-wide roles that org's entries, anyone else gets 404, as for an entry
  // that does not exist (the twin asks for seq GHOST_SEQ). A project-scoped key has no org-wide
  // role, so it gets 404 even for an entry about its own project.
  'GET /api/v1/audit/entries/{seq}/receipt': {
    crossTenant: (f) => [
      receipt(f.audit.aSeq, 404),
      receipt(f.audit.aTrainSeq, 404),
      receipt(f.audit.aSeq, 404, 'the size is looked at only after the entry', '?size=1'),
      receipt(f.audit.platformSeq, 404, "a platform entry (org ''): operators only"),
      p(`/audit/entries/${f.audit.bSeq}/receipt`, 'listing', undefined, "B's own entry"),
      p(`/audit/entries/${f.audit.bSeq}/receipt?size=${f.audit.size}`, 'listing', undefined, "B's own entry"),
    ],
    scoped: (f) => [
      receipt(f.audit.aTrainSeq, 404, 'the audit trail needs an org-wide role, even about its own project'),
      receipt(f.audit.aSeq, 404, 'the audit trail needs an org-wide role'),
      receipt(f.audit.platformSeq, 404, "a platform entry (org '')"),
    ],
  },
  'POST /api/v1/audit/checkpoint': {
    crossTenant: () => [p('/audit/checkpoint', 403, undefined, operatorOnly)],
    viewer: () => [p('/audit/checkpoint', 403, undefined, operatorOnly)],
    scoped: () => [p('/audit/checkpoint', 403, undefined, operatorOnly)],
  },
  'GET /audit/proof/consistency': {
    crossTenant: (f) => [
      pub(`/audit/proof/consistency?from=1&to=${f.audit.size}`, 'listing', undefined, sameForAll),
      pub(`/audit/proof/consistency?from=${f.audit.aSeq}&to=${f.audit.size}`, 'listing', undefined, sameForAll),
    ],
  },
  'POST /audit/cosignatures': {
    crossTenant: (f) => [
      pub('/audit/cosignatures', 403, { checkpoint: f.audit.checkpoint, cosignature: strangerCosignature }, noCosign),
    ],
    viewer: (f) => [
      pub('/audit/cosignatures', 403, { checkpoint: f.audit.checkpoint, cosignature: strangerCosignature }, noCosign),
    ],
  },

  ...registryCases('models'),
  ...registryCases('datasets'),
  'GET /api/v1/policies': {
    crossTenant: () => [p('/policies', 'listing', undefined, 'the platform rules, the same for every caller')],
  },
  'GET /api/v1/policies/{version}': {
    crossTenant: () => [p('/policies/latest', 'listing', undefined, 'the platform rules'), p('/policies/1', 'listing')],
  },
  'POST /api/v1/policies': {
    crossTenant: () => [p('/policies', 403, { policies: 'permit (principal, action, resource);' }, operatorOnly)],
    viewer: () => [
      p('/policies', 403, { policies: 'permit (principal, action, resource);', dryRun: true }, operatorOnly),
    ],
  },
  'GET /api/v1/blob-stores': {
    crossTenant: () => [p('/blob-stores', 403, undefined, operatorOnly)],
    viewer: () => [p('/blob-stores', 403, undefined, operatorOnly)],
  },
  'GET /api/v1/registry/signing-key': {
    crossTenant: () => [p('/registry/signing-key', 'listing', undefined, 'public: the same for every caller')],
  },
  'GET /api/v1/projects/{project}/storage-quota': {
    crossTenant: (f) => [
      p('/projects/acme.train/storage-quota', 404),
      p(`/projects/${f.aResearchId}/storage-quota`, 404),
      p('/projects/globex.train/storage-quota', 'listing'),
    ],
    scoped: (f) => [
      p('/projects/acme.research/storage-quota', 404),
      p(`/projects/${f.aResearchId}/storage-quota`, 404),
      p('/projects/acme.train/storage-quota', 'listing'),
    ],
  },
  'PUT /api/v1/projects/{project}/storage-quota': {
    crossTenant: (f) => [
      p(
        '/projects/acme.train/storage-quota',
        404,
        { limitBytes: 0 },
        'the project lookup comes before the operator check',
      ),
      p(`/projects/${f.aResearchId}/storage-quota`, 404, { limitBytes: null }),
    ],
    viewer: () => [p('/projects/acme.train/storage-quota', 403, { limitBytes: 1 << 30 }, operatorOnly)],
    scoped: (f) => [
      p('/projects/acme.research/storage-quota', 404, { limitBytes: 0 }),
      p(`/projects/${f.aResearchId}/storage-quota`, 404, { limitBytes: 0 }),
    ],
  },

  // Inference: A's deployments, limits and token usage. B's key gets 404 whether it names A's
  // project by ref or id, A's deployment under B's own project, or A's keys and models in B's
  // project; A's viewer gets 403 on every write (the role check comes before the deployment's
  // runtime or the key is looked at), and the key scoped to acme.train finds nothing of research.
  'POST /api/v1/projects/{project}/deployments': {
    crossTenant: (f) => [
      p('/projects/acme.train/deployments', 404, ext('planted')),
      p(`/projects/${f.aTrainId}/deployments`, 404, ext('planted')),
      p('/projects/acme.train/deployments', 404, ext(TRAIN_DEPLOYMENT), 'a name A took: no 409'),
      p('/projects/acme.research/deployments', 404, ext(RESEARCH_DEPLOYMENT), 'a name A took: no 409'),
      p(
        '/projects/globex.train/deployments',
        400,
        { name: 'stolen', model: `acme.train/${f.aRepos.models.name}:main`, gpu: 'B200' },
        "A's registry model in B's project: another org's model, by its name alone (SPEC_INVALID)",
      ),
      p(
        '/projects/globex.train/deployments',
        400,
        { name: 'stolen', model: `acme.train/${f.aRepos.models.name}:${f.aRepos.models.commit}`, gpu: 'B200' },
        "A's model version, by commit, in B's project: another org's model, by its name alone",
      ),
      p(
        '/projects/globex.train/deployments',
        404,
        { name: 'stolen', model: `globex.train/${f.aRepos.models.name}:main`, gpu: 'B200' },
        "A's model name under B's project",
      ),
    ],
    viewer: () => [p('/projects/acme.train/deployments', 403, ext('viewer-made'))],
    scoped: (f) => [
      p('/projects/acme.research/deployments', 404, ext('wider')),
      p(`/projects/${f.aResearchId}/deployments`, 404, ext('wider')),
      p(
        '/projects/acme.train/deployments',
        404,
        { name: 'wider', model: `acme.research/${RESEARCH_REPO}:main`, gpu: 'B200' },
        "a model of the other project, deployed in this one (A's owner gets 422: it has no versions)",
      ),
    ],
  },
  'GET /api/v1/projects/{project}/deployments': {
    crossTenant: (f) => [
      p('/projects/acme.train/deployments', 404),
      p(`/projects/${f.aResearchId}/deployments`, 404),
      p('/projects/globex.train/deployments', 'listing'),
    ],
    scoped: (f) => [
      p('/projects/acme.research/deployments', 404),
      p(`/projects/${f.aResearchId}/deployments`, 404),
      p('/projects/acme.train/deployments', 'listing'),
    ],
  },
  'GET /api/v1/deployments': {
    crossTenant: () => [p('/deployments', 'listing')],
    scoped: () => [p('/deployments', 'listing')],
  },
  'GET /api/v1/projects/{project}/deployments/{name}': {
    crossTenant: (f) => [
      p(`/projects/acme.train/deployments/${TRAIN_DEPLOYMENT}`, 404),
      p(`/projects/${f.aTrainId}/deployments/${TRAIN_DEPLOYMENT}`, 404),
      p(`/projects/acme.research/deployments/${RESEARCH_DEPLOYMENT}`, 404),
      p(`/projects/globex.train/deployments/${TRAIN_DEPLOYMENT}`, 404, undefined, "A's deployment under B's project"),
    ],
    scoped: () => [
      p(`/projects/acme.research/deployments/${RESEARCH_DEPLOYMENT}`, 404),
      p(
        `/projects/acme.train/deployments/${RESEARCH_DEPLOYMENT}`,
        404,
        undefined,
        'a deployment of the other project under this one',
      ),
    ],
  },
  'PATCH /api/v1/projects/{project}/deployments/{name}': {
    crossTenant: (f) => [
      p(`/projects/acme.train/deployments/${TRAIN_DEPLOYMENT}`, 404, { replicas: '2' }),
      p(`/projects/${f.aResearchId}/deployments/${RESEARCH_DEPLOYMENT}`, 404, { replicas: '0..4' }),
      p(
        `/projects/globex.train/deployments/${TRAIN_DEPLOYMENT}`,
        404,
        { replicas: '2' },
        "A's deployment under B's project",
      ),
    ],
    viewer: () => [
      p(
        `/projects/acme.train/deployments/${TRAIN_DEPLOYMENT}`,
        403,
        { replicas: '2' },
        'the role check comes before the external runtime is refused',
      ),
    ],
    scoped: () => [
      p(`/projects/acme.research/deployments/${RESEARCH_DEPLOYMENT}`, 404, { replicas: '2' }),
      p(`/projects/acme.train/deployments/${RESEARCH_DEPLOYMENT}`, 404, { replicas: '2' }),
    ],
  },
  'DELETE /api/v1/projects/{project}/deployments/{name}': {
    crossTenant: (f) => [
      p(`/projects/acme.train/deployments/${TRAIN_DEPLOYMENT}`, 404),
      p(`/projects/${f.aResearchId}/deployments/${RESEARCH_DEPLOYMENT}`, 404),
      p(`/projects/globex.train/deployments/${TRAIN_DEPLOYMENT}`, 404, undefined, "A's deployment under B's project"),
    ],
    viewer: () => [p(`/projects/acme.train/deployments/${TRAIN_DEPLOYMENT}`, 403)],
    scoped: () => [
      p(`/projects/acme.research/deployments/${RESEARCH_DEPLOYMENT}`, 404),
      p(`/projects/acme.train/deployments/${RESEARCH_DEPLOYMENT}`, 404),
    ],
  },
  'GET /api/v1/projects/{project}/inference-limits': {
    crossTenant: (f) => [
      p('/projects/acme.train/inference-limits', 404),
      p(`/projects/${f.aResearchId}/inference-limits`, 404),
      p('/projects/globex.train/inference-limits', 'listing'),
    ],
    scoped: (f) => [
      p('/projects/acme.research/inference-limits', 404),
      p(`/projects/${f.aResearchId}/inference-limits`, 404),
      p('/projects/acme.train/inference-limits', 'listing'),
    ],
  },
  'PUT /api/v1/projects/{project}/inference-limits': {
    crossTenant: (f) => [
      p('/projects/acme.train/inference-limits', 404, { rpm: 1 }),
      p(`/projects/${f.aResearchId}/inference-limits`, 404, { monthlyTokens: 0 }),
      p('/projects/acme.train/inference-limits', 404, { tpm: 1, key: f.aOwnerKey.prefix }),
      p(
        '/projects/globex.train/inference-limits',
        404,
        { rpm: 1, key: f.aOwnerKey.prefix },
        "A's key in B's project: same as no such key",
      ),
      p('/projects/globex.train/inference-limits', 404, { tpm: 0, key: f.aOwnerKey.id }, "A's key id in B's project"),
      p('/projects/globex.train/inference-limits', 404, { rpm: 5, key: f.aScopedKey.prefix }, "A's scoped key"),
    ],
    viewer: (f) => [
      p('/projects/acme.train/inference-limits', 403, { rpm: 1_000_000 }),
      p(
        '/projects/acme.train/inference-limits',
        403,
        { rpm: 0, key: f.aOwnerKey.prefix },
        'the role check comes before the key is looked up',
      ),
    ],
    scoped: (f) => [
      p('/projects/acme.research/inference-limits', 404, { rpm: 1 }),
      p(`/projects/${f.aResearchId}/inference-limits`, 404, { tpm: 1 }),
    ],
  },
  'DELETE /api/v1/projects/{project}/inference-limits': {
    crossTenant: (f) => [
      p('/projects/acme.train/inference-limits', 404),
      p(`/projects/${f.aResearchId}/inference-limits`, 404),
      p(`/projects/acme.train/inference-limits?key=${f.aOwnerKey.prefix}`, 404),
      p(
        `/projects/globex.train/inference-limits?key=${f.aOwnerKey.prefix}`,
        404,
        undefined,
        "A's key (with limits) in B's project: same as no such key",
      ),
      p(`/projects/globex.train/inference-limits?key=${f.aOwnerKey.id}`, 404, undefined, "A's key id in B's project"),
    ],
    viewer: (f) => [
      p('/projects/acme.train/inference-limits', 403),
      p(
        `/projects/acme.train/inference-limits?key=${f.aOwnerKey.prefix}`,
        403,
        undefined,
        'the role check comes before the key is looked up',
      ),
    ],
    scoped: (f) => [
      p('/projects/acme.research/inference-limits', 404),
      p(`/projects/${f.aResearchId}/inference-limits`, 404),
    ],
  },
  'GET /api/v1/projects/{project}/usage/tokens': {
    crossTenant: (f) => [
      p('/projects/acme.train/usage/tokens', 404),
      p(`/projects/${f.aTrainId}/usage/tokens?by=key&since=7d`, 404),
      p('/projects/acme.research/usage/tokens?by=replica', 404),
      p('/projects/globex.train/usage/tokens', 'listing'),
      p('/projects/globex.train/usage/tokens?by=key&since=30d', 'listing'),
      p('/projects/globex.train/usage/tokens?by=minute&since=1h', 'listing'),
    ],
    scoped: (f) => [
      p('/projects/acme.research/usage/tokens', 404),
      p(`/projects/${f.aResearchId}/usage/tokens?by=day`, 404),
      p('/projects/acme.train/usage/tokens', 'listing'),
      p('/projects/acme.train/usage/tokens?by=replica', 'listing'),
    ],
  },
  // Usage rollups (src/metering/, docs/metering.md): reads, so no viewer cases.
  'GET /api/v1/projects/{project}/usage': {
    crossTenant: (f) => [
      p('/projects/acme.train/usage', 404),
      p(`/projects/${f.aTrainId}/usage?by=pool&month=2026-12`, 404),
      p('/projects/acme.research/usage?by=model', 404),
      p('/projects/globex.train/usage', 'listing'),
      p('/projects/globex.train/usage?by=deployment&from=30d', 'listing'),
    ],
    scoped: (f) => [
      p('/projects/acme.research/usage', 404),
      p(`/projects/${f.aResearchId}/usage?by=day`, 404),
      p('/projects/acme.train/usage?by=pool', 'listing'),
    ],
  },
  'GET /api/v1/orgs/{org}/usage': {
    crossTenant: () => [
      p('/orgs/acme/usage', 404),
      p('/orgs/acme/usage?by=pool', 404),
      p('/orgs/globex/usage', 'listing'),
    ],
    scoped: () => [
      p('/orgs/acme/usage', 'listing', undefined, 'by project: acme.train alone'),
      p('/orgs/acme/usage?by=deployment', 'listing'),
    ],
  },
  'GET /api/v1/projects/{project}/workloads/{workload}/usage': {
    crossTenant: (f) => [
      p('/projects/acme.train/workloads/finetune/usage', 404),
      p(`/projects/${f.aTrainId}/workloads/${f.aTrainJobId}/usage`, 404),
      p(`/projects/globex.train/workloads/${f.aTrainJobId}/usage`, 404, undefined, "A's workload under B's project"),
    ],
    scoped: (f) => [
      p('/projects/acme.research/workloads/survey/usage', 404),
      p(`/projects/acme.train/workloads/${f.aResearchJobId}/usage`, 404, undefined, 'a workload of the other project'),
    ],
  },

  // Billing (src/metering/): the price catalogue is read by every caller (platform-wide prices, and
  // those of deployments it may see) and written by operators only; an org's statement and a
  // project's budget are A's like its projects: 404 for B, 403 for A's viewer's writes.
  'GET /api/v1/prices': {
    crossTenant: () => [
      p('/prices', 'listing', undefined, "the platform's prices, none of A's deployments"),
      p('/prices?item=tokens-out', 'listing', undefined, "the item of A's price"),
      p(`/prices?at=${MONTH}-01T00:00:00Z`, 'listing'),
    ],
    scoped: () => [p('/prices', 'listing', undefined, "no price of acme.research's deployment")],
  },
  'POST /api/v1/prices': {
    crossTenant: () => [
      p(
        '/prices',
        403,
        {
          item: 'tokens-out',
          unitPrice: '0.01',
          validFrom: `${MONTH}-01T00:00:00Z`,
          deployment: `acme.train/${TRAIN_DEPLOYMENT}`,
          supersede: true,
        },
        `${operatorOnly}: before A's deployment is looked up`,
      ),
      p('/prices', 403, { item: 'gpu-hour', unitPrice: '0', validFrom: `${MONTH}-01T00:00:00Z` }, operatorOnly),
    ],
    viewer: () => [
      p('/prices', 403, { item: 'gpu-hour', unitPrice: '0', validFrom: `${MONTH}-01T00:00:00Z` }, operatorOnly),
    ],
  },
  'POST /api/v1/prices/{id}/end': {
    crossTenant: (f) => [
      p(`/prices/${f.aTrainPriceId}/end`, 403, { validTo: `${MONTH}-01T00:00:00Z` }, operatorOnly),
      p(`/prices/${f.aResearchPriceId}/end`, 403, { validTo: `${MONTH}-01T00:00:00Z` }, operatorOnly),
    ],
    viewer: (f) => [p(`/prices/${f.aTrainPriceId}/end`, 403, { validTo: `${MONTH}-01T00:00:00Z` }, operatorOnly)],
  },
  'GET /api/v1/orgs/{org}/statements/{month}': {
    crossTenant: () => [
      p(`/orgs/acme/statements/${MONTH}`, 404),
      p(`/orgs/acme/statements/${PAST_MONTH}?format=csv`, 404),
      p('/orgs/acme/statements/2999-01', 404, undefined, 'the org is looked up before the month: no MONTH_IN_FUTURE'),
      p(`/orgs/globex/statements/${MONTH}`, 'listing'),
      p(`/orgs/globex/statements/${MONTH}?format=csv`, 'listing'),
    ],
    scoped: () => [
      p(`/orgs/acme/statements/${MONTH}`, 'listing', undefined, 'the lines of acme.train only'),
      p(`/orgs/acme/statements/${MONTH}?format=csv`, 'listing'),
    ],
  },
  'GET /api/v1/projects/{project}/budget': {
    crossTenant: (f) => [
      p('/projects/acme.train/budget', 404),
      p(`/projects/${f.aResearchId}/budget`, 404),
      p('/projects/globex.research/budget', 404, undefined, "A's project name under B's org"),
    ],
    scoped: (f) => [
      p('/projects/acme.research/budget', 404),
      p(`/projects/${f.aResearchId}/budget`, 404),
      p('/projects/acme.train/budget', 'listing'),
    ],
  },
  'PUT /api/v1/projects/{project}/budget': {
    crossTenant: (f) => [
      p('/projects/acme.train/budget', 404, { unit: 'EUR', amount: 0 }),
      p(`/projects/${f.aResearchId}/budget`, 404, { unit: 'gpu-hours', amount: 1, action: 'block' }),
      p('/projects/globex.research/budget', 404, { unit: 'EUR', amount: 1 }, "A's project name under B's org"),
    ],
    viewer: () => [
      p('/projects/acme.train/budget', 403, { unit: 'EUR', amount: 1_000_000_000 }),
      p('/projects/acme.research/budget', 403, { unit: 'EUR', amount: 1, thresholds: [10] }),
    ],
    scoped: (f) => [
      p('/projects/acme.research/budget', 404, { unit: 'EUR', amount: 0 }),
      p(`/projects/${f.aResearchId}/budget`, 404, { unit: 'EUR', amount: 0 }),
      p(
        '/projects/acme.train/budget',
        403,
        { unit: 'EUR', amount: 0 },
        'a member of acme.train: budgets need an admin',
      ),
    ],
  },
  'DELETE /api/v1/projects/{project}/budget': {
    crossTenant: (f) => [
      p('/projects/acme.train/budget', 404),
      p(`/projects/${f.aResearchId}/budget`, 404),
      p('/projects/globex.train/budget', 404, undefined, 'B has no budget: as for A, nothing to say'),
    ],
    viewer: () => [p('/projects/acme.train/budget', 403), p('/projects/acme.research/budget', 403)],
    scoped: (f) => [p('/projects/acme.research/budget', 404), p(`/projects/${f.aResearchId}/budget`, 404)],
  },

  // Compliance documents (src/compliance/): generated from A's records, so B gets 404 as for a
  // model or org that does not exist; the GDPR records need an org-wide admin role.
  'GET /api/v1/compliance/annex-xi/{project}/{name}': {
    crossTenant: (f) => [
      p(`/compliance/annex-xi/acme.train/${f.aRepos.models.name}`, 404),
      p(`/compliance/annex-xi/acme.research/${RESEARCH_REPO}?format=md`, 404),
      p(`/compliance/annex-xi/globex.train/${f.aRepos.models.name}`, 404, undefined, "A's repo name under B's project"),
    ],
    scoped: () => [p(`/compliance/annex-xi/acme.research/${RESEARCH_REPO}`, 404)],
  },
  'GET /api/v1/compliance/annex-xi/{project}/{name}/{rev}': {
    crossTenant: (f) => [
      p(`/compliance/annex-xi/acme.train/${f.aRepos.models.name}/main`, 404),
      p(`/compliance/annex-xi/acme.train/${f.aRepos.models.name}/${f.aRepos.models.commit}`, 404),
      p(`/compliance/annex-xi/acme.train/${f.aRepos.models.name}/golden?format=md`, 404),
    ],
    scoped: () => [p(`/compliance/annex-xi/acme.research/${RESEARCH_REPO}/main`, 404)],
  },
  'GET /api/v1/orgs/{org}/compliance/gdpr-art30': {
    crossTenant: () => [
      p('/orgs/acme/compliance/gdpr-art30', 404),
      p('/orgs/acme/compliance/gdpr-art30?format=md', 404),
    ],
    viewer: () => [p('/orgs/acme/compliance/gdpr-art30', 403, undefined, 'the records name every member: admins')],
    scoped: () => [
      p('/orgs/acme/compliance/gdpr-art30', 403, undefined, 'needs an org-wide admin role before any lookup'),
    ],
  },

  // Console sessions (src/api/session.ts). A bearer key is no session: GET and DELETE answer it
  // 401, whoever sends it. A session is opened by the key in the body alone, and a cookie reaches
  // only its own session; the writes that prove it (B opening and ending its own) are in the test
  // after the matrix.
  'GET /api/v1/session/methods': {
    crossTenant: () => [p('/session/methods', 'listing', undefined, 'public: how to sign in, the same for all')],
  },
  'POST /api/v1/session': {
    crossTenant: (f) => [
      p('/session', 401, { apiKey: guessedKey(f.aOwnerKey.prefix) }, "A's key prefix, a guessed secret: as no key"),
      p('/session', 401, { apiKey: guessedKey(f.aScopedKey.prefix) }, "A's scoped key's prefix, a guessed secret"),
      p('/session', 401, { apiKey: f.aSession.token }, "A's session cookie is no API key"),
    ],
    viewer: (f) => [
      p(
        '/session',
        401,
        { apiKey: guessedKey(f.aOwnerKey.prefix) },
        "the viewer's key in the header lends nothing: only the body's key opens a session",
      ),
    ],
  },
  'GET /api/v1/session': {
    crossTenant: (f) => [
      p('/session', 401, undefined, noSession),
      asBrowser(p('/session', 'listing', undefined, "B's own session: B's principal and memberships"), f.bSession),
      asBrowser(p('/session', 401, undefined, 'a session cookie never issued'), FORGED_SESSION),
    ],
    scoped: (f) => [asBrowser(p('/session', 'listing', undefined, 'its one project'), f.aScopedSession)],
  },
  'DELETE /api/v1/session': {
    crossTenant: (f) => [
      p('/session', 401, undefined, noSession),
      asBrowser(p('/session', 401, undefined, 'a session cookie never issued'), FORGED_SESSION, f.aSession.csrf),
      asBrowser(
        p('/session', 403, undefined, "B's cookie with A's CSRF token: refused before anything ends (CSRF_FAILED)"),
        f.bSession,
        f.aSession.csrf,
      ),
      asBrowser(p('/session', 403, undefined, "B's cookie without its CSRF token"), f.bSession),
    ],
    viewer: () => [p('/session', 401, undefined, noSession)],
  },
};

for (const dialect of DIALECTS) {
  describe(`cross-tenant isolation on ${dialect}`, async () => {
    const skip = await skipReason(dialect);
    let t: TestApp;
    let f: Fixture;
    let baseline: StateSnapshot;
    const keys = logKeys(randomBytes(32), 'test/audit');
    let sequencer: Sequencer;

    before(async () => {
      if (skip) return;
      // As a server with an executor, whose log files are not there yet, with a registry, and
      // serving deployments (no controller runs: replicas never appear).
      t = await startTestApp(dialect, {
        logs: () => undefined,
        registry: {},
        deployments: { runtime: locateReplicaRuntime(), allowModelPaths: true },
        auditLog: { verifierKey: keys.verifierKey, witnessKeys: [], flush: () => sequencer.flush() },
      });
      // As the server's loops would: integrates the entries and signs checkpoints, on demand only.
      sequencer = new Sequencer(t.store.db, { keys, dialect });
      f = await seedFixture(t, () => sequencer.flush());
      baseline = await snapshotState(t);
    });
    after(async () => {
      if (!skip) await t.close();
    });

    /** Calls a probe and checks what every probe must hold: the status, the envelope, no write. */
    async function run(probe: Probe, method: string, token: string, route: string): Promise<Reply> {
      const r = await t.call(method, probe.url, {
        token: probe.browser ? null : token,
        body: probe.body,
        headers: probe.browser,
      });
      const what = `${method} ${probe.url}${probe.body ? ` ${JSON.stringify(probe.body)}` : ''}${probe.browser ? ' (as a browser)' : ''}`;
      if (probe.expect === 'listing') {
        assert.equal(r.status, 200, `${what}: ${JSON.stringify(r.body)}`);
      } else {
        assert.equal(
          r.status,
          probe.expect,
          `${what}${probe.note ? ` (${probe.note})` : ''}: ${JSON.stringify(r.body)}`,
        );
        assert.equal(typeof r.body?.error?.code, 'string', what);
        assert.equal(typeof r.body?.error?.message, 'string', what);
      }
      assert.match(new URL(probe.url, 'http://x').pathname, templateRegex(route), `${what} does not address ${route}`);
      const now = await snapshotState(t);
      assert.deepEqual(now, baseline, `${what} changed state: ${JSON.stringify(stateDiff(baseline, now))}`);
      return r;
    }

    it('maps every route of /openapi.json, and no route that is gone', { skip }, async () => {
      const routes = await openApiRoutes(t);
      const unmapped = routes.filter((r) => !ROUTES[r]);
      assert.deepEqual(unmapped, [], 'routes without a cross-tenant case: add them to ROUTES');
      const stale = Object.keys(ROUTES).filter((r) => !routes.includes(r));
      assert.deepEqual(stale, [], 'ROUTES names routes that /openapi.json no longer lists');
      const mutatingWithoutViewer = routes.filter((r) => !r.startsWith('GET ') && !ROUTES[r]?.viewer);
      assert.deepEqual(mutatingWithoutViewer, [], 'mutating routes without a viewer case');
      const total = routes.reduce((n, r) => {
        const c = ROUTES[r];
        return n + c.crossTenant(f).length + (c.viewer?.(f).length ?? 0) + (c.scoped?.(f).length ?? 0);
      }, 0);
      console.log(
        `# cross-tenant matrix on ${dialect}: ${routes.length} routes, ${total} route×case probes (+ a stand-in twin for each refusal)`,
      );
    });

    for (const [route, cases] of Object.entries(ROUTES)) {
      const method = route.slice(0, route.indexOf(' '));

      it(`${route}: B's key finds nothing of A`, { skip }, async () => {
        for (const probe of cases.crossTenant(f)) {
          const r = await run(probe, method, f.b.ownerToken, route);
          const sent = probe.url + JSON.stringify(probe.body ?? null) + JSON.stringify(probe.browser ?? null);
          const unsent = f.aSecrets.filter((s) => !sent.includes(s));
          const leaked = unsent.filter((s) => JSON.stringify(r.body).includes(s));
          assert.deepEqual(leaked, [], `${method} ${probe.url} answers with A's ${leaked.join(', ')}`);
          if (probe.expect === 'listing') {
            assert.ok(!JSON.stringify(r.body).includes(f.aOrgId), `${method} ${probe.url} lists A`);
            continue;
          }
          // The same request about things that exist nowhere reads the same, name for name.
          const pairs = [...(probe.twin ?? []), ...f.ghosts];
          const ghost = await run(substitute(probe, pairs), method, f.b.ownerToken, route);
          assert.equal(
            ghost.status,
            r.status,
            `${method} ${probe.url}: A's resource and a missing one answer differently`,
          );
          assert.deepEqual(
            unsubstitute(ghost.body, pairs),
            r.body,
            `${method} ${probe.url}: A's resource and a missing one answer differently`,
          );
        }
      });

      if (cases.viewer) {
        it(`${route}: A's viewer may not change anything`, { skip }, async () => {
          for (const probe of cases.viewer!(f)) {
            const r = await run(probe, method, f.a.viewerToken, route);
            if (r.status === 403) assert.equal(r.body.error.code, 'FORBIDDEN');
          }
        });
      }

      if (cases.scoped) {
        it(`${route}: A's key for acme.train finds no other project`, { skip }, async () => {
          for (const probe of cases.scoped!(f)) {
            const r = await run(probe, method, f.aScopedKey.token, route);
            const text = JSON.stringify(r.body);
            if (probe.expect === 'listing') {
              assert.ok(
                !text.includes('research') && !text.includes(f.aResearchId),
                `${method} ${probe.url} lists acme.research: ${text}`,
              );
              continue;
            }
            if (probe.expect !== 404) continue;
            const pairs = [...(probe.twin ?? []), ...f.researchGhosts];
            const ghost = await run(substitute(probe, pairs), method, f.aScopedKey.token, route);
            assert.equal(ghost.status, r.status);
            assert.deepEqual(unsubstitute(ghost.body, pairs), r.body);
          }
        });
      }
    }

    it('serves the public audit log (checkpoint, key, tiles) alike to every caller, with nothing of A', {
      skip,
    }, async () => {
      const { size } = f.audit;
      const tile = size >= 256 ? 'tile/0/000' : `tile/0/000.p/${size}`;
      const expected: [string, number][] = [
        ['/audit/checkpoint', 200],
        ['/audit/key', 200],
        ['/.well-known/fabrik/audit-log-key', 200],
        [`/audit/${tile}`, 200],
        [`/audit/proof/consistency?from=1&to=${size}`, 200],
        // Entry bundles hold tenants' entries: an entry is read through its receipt only.
        [`/audit/tile/entries/${size >= 256 ? '000' : `000.p/${size}`}`, 404],
        [`/audit/tile/0/${size >= 256 ? '001' : `000.p/${size + 1}`}`, 404],
      ];
      for (const [url, status] of expected) {
        const answers: [string, string][] = [];
        for (const token of [null, f.b.ownerToken, f.a.ownerToken, f.aScopedKey.token, OPERATOR_TOKEN]) {
          const r = await t.app.inject({
            method: 'GET',
            url,
            headers: token ? { authorization: `Bearer ${token}` } : {},
          });
          assert.equal(r.statusCode, status, `${url} with ${token ? 'a key' : 'no key'}: ${r.body}`);
          answers.push([String(r.headers['content-type']), r.rawPayload.toString('base64')]);
        }
        assert.ok(
          answers.every((x) => JSON.stringify(x) === JSON.stringify(answers[0])),
          `${url}: answers differ by caller`,
        );
        const text = Buffer.from(answers[0]![1], 'base64').toString('latin1');
        const leaked = f.aSecrets.filter((x) => text.includes(x));
        assert.deepEqual(leaked, [], `${url} answers with A's ${leaked.join(', ')}`);
      }
      const key = await t.app.inject({ method: 'GET', url: '/audit/key' });
      assert.equal(key.body, `${keys.verifierKey}\n`);
      const cp = openCheckpoint(f.audit.checkpoint, keys.verifierKey, { origin: 'test/audit' });
      assert.equal(cp.size, size);
      const hashes = (await t.app.inject({ method: 'GET', url: `/audit/${tile}` })).rawPayload;
      assert.equal(hashes.length, Math.min(size, 256) * 32);
    });

    it("A's org-wide roles get receipts of A's entries, which verify; of nothing else, and after a flush", {
      skip,
    }, async () => {
      const check = (r: Reply, seq: number, size: number) => {
        assert.equal(r.status, 200, JSON.stringify(r.body));
        const body = r.body as {
          seq: number;
          entry: string;
          leafIndex: number;
          treeSize: number;
          leafHash: string;
          proof: string[];
          checkpoint: string;
        };
        assert.deepEqual([body.seq, body.leafIndex, body.treeSize], [seq, seq - 1, size]);
        const entry = JSON.parse(body.entry);
        assert.deepEqual([entry.seq, entry.orgId], [seq, f.aOrgId]);
        const cp = openCheckpoint(body.checkpoint, keys.verifierKey, { origin: 'test/audit' });
        assert.equal(cp.size, size);
        const leaf = leafHash(Buffer.from(body.entry, 'utf8'));
        assert.equal(body.leafHash, leaf.toString('hex'));
        verifyInclusion(
          body.leafIndex,
          body.treeSize,
          leaf,
          body.proof.map((h) => Buffer.from(h, 'hex')),
          cp.rootHash,
        );
      };
      const receiptOf = (seq: number, token: string, query = '') =>
        t.call('GET', `${API}/audit/entries/${seq}/receipt${query}`, { token });
      for (const token of [f.a.ownerToken, f.a.viewerToken]) {
        for (const seq of [f.audit.aSeq, f.audit.aTrainSeq]) {
          check(await receiptOf(seq, token), seq, f.audit.size);
          check(await receiptOf(seq, token, `?size=${f.audit.size}`), seq, f.audit.size);
        }
        for (const seq of [f.audit.bSeq, f.audit.platformSeq, Number(GHOST_SEQ)]) {
          const r = await receiptOf(seq, token);
          assert.equal(r.status, 404, `${seq}: ${JSON.stringify(r.body)}`);
          assert.equal(r.body.error.code, 'NOT_FOUND');
        }
      }
      // A new entry of A's is in no checkpoint yet: 409 until the log integrates it; the operator
      // has it integrated and signed now. (A write: the matrix is done, and this is no secret of
      // those the last test looks at.)
      const written = await t.call('PUT', `${API}/orgs/acme/secrets/after-matrix`, {
        token: f.a.ownerToken,
        body: { value: 'x' },
      });
      assert.ok(written.status < 300, JSON.stringify(written.body));
      const row = await t.store.db
        .selectFrom('audit_entries')
        .select((eb) => eb.fn.max('seq').as('seq'))
        .where('org_id', '=', f.aOrgId)
        .executeTakeFirstOrThrow();
      const seq = Number(row.seq);
      assert.ok(seq > f.audit.size);
      const early = await receiptOf(seq, f.a.ownerToken);
      assert.equal(early.status, 409, JSON.stringify(early.body));
      assert.equal(early.body.error.code, 'CONFLICT');
      const signed = await t.call('POST', `${API}/audit/checkpoint`);
      assert.equal(signed.status, 200, JSON.stringify(signed.body));
      assert.ok(signed.body.size >= seq);
      check(await receiptOf(seq, f.a.ownerToken), seq, signed.body.size);
      check(await receiptOf(seq, f.a.viewerToken, `?size=${seq}`), seq, signed.body.size);
      // An older checkpoint still proves an older entry; one that does not cover the entry, no.
      check(await receiptOf(f.audit.aSeq, f.a.ownerToken, `?size=${f.audit.size}`), f.audit.aSeq, f.audit.size);
      const before = await receiptOf(seq, f.a.ownerToken, `?size=${f.audit.size}`);
      assert.equal(before.status, 409, JSON.stringify(before.body));
      // The old tree extends to the new one, provably.
      const proof = await t.call('GET', `/audit/proof/consistency?from=${f.audit.size}&to=${signed.body.size}`, {
        token: null,
      });
      assert.equal(proof.status, 200, JSON.stringify(proof.body));
      verifyConsistency(
        f.audit.size,
        signed.body.size,
        proof.body.proof.map((h: string) => Buffer.from(h, 'hex')),
        openCheckpoint(f.audit.checkpoint, keys.verifierKey).rootHash,
        openCheckpoint(signed.body.checkpoint, keys.verifierKey).rootHash,
      );
    });

    it("keeps A's listings whole: the matrix changed nothing A sees", { skip }, async () => {
      const projects = await t.call('GET', `${API}/orgs/acme/projects`, { token: f.a.ownerToken });
      assert.deepEqual(
        projects.body.items.map((x: { name: string }) => x.name),
        ['research', 'train'],
      );
      const keys = await t.call('GET', `${API}/orgs/acme/keys`, { token: f.a.ownerToken });
      assert.ok(keys.body.items.every((k: { state: string }) => k.state === 'active'));
      const scoped = await t.call('GET', `${API}/orgs/acme/projects`, { token: f.aScopedKey.token });
      assert.deepEqual(
        scoped.body.items.map((x: { name: string }) => x.name),
        ['train'],
      );
      for (const [path, r] of Object.entries(f.aRepos)) {
        const list = await t.call('GET', `${API}/projects/acme.train/${path}`, { token: f.a.ownerToken });
        assert.deepEqual(
          list.body.items.map((x: { name: string; latest: { id: string } | null }) => [x.name, x.latest?.id]),
          [[r.name, r.commit]],
        );
        const repo = await t.call('GET', `${API}/projects/acme.train/${path}/${r.name}`, { token: f.a.ownerToken });
        assert.deepEqual(
          repo.body.refs.map((x: { name: string; commit: string }) => [x.name, x.commit]),
          [
            ['golden', r.commit],
            ['main', r.commit],
          ],
        );
        const version = await t.call('GET', `${API}/projects/acme.train/${path}/${r.name}/versions/main`, {
          token: f.a.ownerToken,
        });
        assert.equal(version.body.envelope.signatures.length, 1, 'no countersignature landed');
      }
      const deployments = await t.call('GET', `${API}/deployments`, { token: f.a.ownerToken });
      assert.deepEqual(
        deployments.body.items
          .map((d: { project: string; name: string; upstreamUrl: string }) => [d.project, d.name, d.upstreamUrl])
          .sort(),
        [
          ['acme.research', RESEARCH_DEPLOYMENT, 'http://127.0.0.1:9/v1'],
          ['acme.train', TRAIN_DEPLOYMENT, 'http://127.0.0.1:9/v1'],
        ],
      );
      const limits = await t.call('GET', `${API}/projects/acme.train/inference-limits`, { token: f.a.ownerToken });
      assert.deepEqual(
        [limits.body.limits?.rpm, limits.body.limits?.tpm, limits.body.limits?.monthlyTokens],
        [600, 60_000, 10_000_000],
      );
      assert.deepEqual(
        limits.body.keys.map((k: { keyPrefix: string; rpm: number | null }) => [k.keyPrefix, k.rpm]),
        [[f.aOwnerKey.prefix, 60]],
      );
      assert.equal(limits.body.monthTokens, 600);
      const research = await t.call('GET', `${API}/projects/acme.research/inference-limits`, { token: f.a.ownerToken });
      assert.equal(research.body.limits?.monthlyTokens, 5_000);
      const usage = await t.call('GET', `${API}/projects/acme.train/usage/tokens`, { token: f.a.viewerToken });
      assert.deepEqual(
        usage.body.rows.map((r: { group: string; requests: number; tokensIn: number }) => [
          r.group,
          r.requests,
          r.tokensIn,
        ]),
        [[TRAIN_DEPLOYMENT, 3, 120]],
      );
      const denied = await t.call('GET', `${API}/audit/entries?org=acme&limit=1000`);
      assert.ok(
        denied.body.items.some(
          (e: { outcome: string; actor: { principal: string } }) =>
            e.outcome === 'denied' && e.actor.principal === 'user:acme-viewer',
        ),
        "the viewer's refused mutations are on A's record",
      );
      assert.ok(
        denied.body.items.every((e: { actor: { principal: string } }) => !e.actor.principal.startsWith('user:globex')),
        "B's probes leave no trace in A's audit trail: for B, A does not exist",
      );
      const budget = await t.call('GET', `${API}/projects/acme.train/budget`, { token: f.a.viewerToken });
      assert.deepEqual([budget.status, budget.body.unit, budget.body.amount], [200, 'EUR', 5000]);
      const prices = await t.call('GET', `${API}/prices?item=tokens-out`, { token: f.a.viewerToken });
      assert.deepEqual(
        prices.body.items.map((x: { id: string; validTo: string | null }) => [x.id, x.validTo]),
        [[f.aTrainPriceId, null]],
        "A sees its deployment's price, unended",
      );
    });

    // Writes, after the matrix: B opens and ends a session of its own; A's stays as it was.
    it("console sessions: B's key opens B's session, never A's; B's cookie ends B's own and reaches nothing of A", {
      skip,
    }, async () => {
      const asB = await t.call('POST', `${API}/session`, { token: f.a.ownerToken, body: { apiKey: f.b.ownerToken } });
      assert.equal(asB.status, 200, JSON.stringify(asB.body));
      assert.equal(asB.body.principal.name, 'globex-owner', "the body's key decides, not the header's (A's)");
      assert.ok(asB.body.memberships.length > 0);
      assert.ok(
        asB.body.memberships.every((m: { org: string }) => m.org === 'globex'),
        JSON.stringify(asB.body),
      );
      const text = JSON.stringify(asB.body) + JSON.stringify(asB.headers['set-cookie']);
      assert.deepEqual(
        f.aSecrets.filter((x) => text.includes(x)),
        [],
        "B's session names nothing of A",
      );
      const cookie = /fabrik_session=(fbs_[^;]+)/.exec([asB.headers['set-cookie']].flat().join('\n'))?.[1];
      assert.ok(cookie && cookie !== f.bSession.token && cookie !== f.aSession.token, 'a new session');
      const b: ConsoleSession = { token: cookie, csrf: asB.body.csrfToken };
      const browse = (method: string, url: string, session: ConsoleSession, body?: unknown) =>
        t.call(method, `${API}${url}`, {
          token: null,
          body,
          headers: { cookie: `fabrik_session=${session.token}`, 'x-csrf-token': session.csrf },
        });
      // B's cookie is B's key: A's org does not exist for it, as for B's bearer key.
      const before = await snapshotState(t);
      for (const [method, url, body] of [
        ['GET', '/orgs/acme', undefined],
        ['PATCH', '/orgs/acme', { displayName: 'pwned by cookie' }],
        ['GET', '/projects/acme.train/budget', undefined],
        ['DELETE', '/projects/acme.train/budget', undefined],
      ] as const) {
        const r = await browse(method, url, b, body);
        assert.equal(r.status, 404, `${method} ${url} with B's cookie: ${JSON.stringify(r.body)}`);
      }
      assert.deepEqual(await snapshotState(t), before, "B's cookie changed nothing of A");
      assert.equal((await browse('GET', '/orgs/globex', b)).status, 200);
      // B ends its new session; A's session and B's other one live on.
      const ended = await browse('DELETE', '/session', b);
      assert.equal(ended.status, 204, JSON.stringify(ended.body));
      const gone = await browse('GET', '/session', b);
      assert.equal(gone.status, 401, JSON.stringify(gone.body));
      assert.equal(gone.body.error.code, 'UNAUTHENTICATED');
      const again = await browse('DELETE', '/session', b);
      assert.equal(again.status, 401, 'an ended session ends nothing more');
      const mine = await browse('GET', '/session', f.aSession);
      assert.equal(mine.status, 200, JSON.stringify(mine.body));
      assert.equal(mine.body.principal.name, 'acme-owner');
      assert.equal((await browse('GET', '/session', f.bSession)).status, 200, "B's first session is not this one");
      const rows = await t.store.db.selectFrom('console_sessions').select(['ended_at']).execute();
      assert.equal(rows.filter((r) => r.ended_at).length, 1, 'exactly one session ended: the one B ended');
    });
  });
}

/** Org A with everything a tenant has, and org B with the basics; then the audit log, flushed. */
async function seedFixture(t: TestApp, flush: () => Promise<{ size: number }>): Promise<Fixture> {
  const a = await seedTenant(t, 'acme');
  const b = await seedTenant(t, 'globex');
  const must = async (method: string, url: string, body: unknown, token?: string) => {
    const r = await t.call(method, `${API}${url}`, { body, token });
    if (r.status >= 300) throw new Error(`${method} ${url}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const org = await must('GET', '/orgs/acme', undefined, a.ownerToken);
  const train = await must('GET', '/projects/acme.train', undefined, a.ownerToken);
  const research = await must('POST', '/orgs/acme/projects', { name: 'research' }, a.ownerToken);
  const sa = await must(
    'POST',
    '/orgs/acme/serviceaccounts',
    { name: 'trainer', role: 'member', project: 'train' },
    a.ownerToken,
  );
  await must('POST', '/orgs/acme/members', { user: 'acme-dev', role: 'member' }, a.ownerToken);
  const scoped = await must(
    'POST',
    '/orgs/acme/keys',
    { name: 'trainer-ci', serviceAccount: 'trainer', project: 'train' },
    a.ownerToken,
  );
  const dev = await must('POST', '/orgs/acme/keys', { name: 'dev', user: 'acme-dev' }, a.ownerToken);
  await must('PUT', '/projects/acme.research/quotas/rtxpro6000', { guaranteed: 4, limit: 8 });
  const trainJob = await must('POST', '/projects/acme.train/workloads', job('finetune'), a.ownerToken);
  const researchJob = await must(
    'POST',
    '/projects/acme.research/workloads',
    { ...job('survey'), resources: { pool: 'rtxpro6000', gpu: 8 } },
    a.ownerToken,
  );
  const webhook = await must('POST', '/orgs/acme/webhooks', { url: 'https://hooks.acme.example/fabrik' }, a.ownerToken);
  const breakGlass = await must('POST', '/orgs/acme/break-glass', { reason: 'INC-1: acme asked us', expiresIn: '2h' });
  // The registry: a model and a dataset in acme.train, created over REST, a version of each pushed
  // with the Hub client and tagged; a repo of each kind in acme.research, without versions.
  const hubUrl = `${await t.app.listen({ host: '127.0.0.1', port: 0 })}/hub`;
  const repos = {} as Record<RegistryPath, RegistryRepo>;
  for (const [path, kind, name, file] of [
    ['models', 'model', 'sovereign-llm', 'weights.bin'],
    ['datasets', 'dataset', 'private-corpus', 'train.jsonl'],
  ] as const) {
    await must('POST', `/projects/acme.train/${path}`, { name }, a.ownerToken);
    await must('POST', `/projects/acme.research/${path}`, { name: RESEARCH_REPO }, a.ownerToken);
    const pushed = await hub.uploadFiles({
      repo: { type: kind, name: `acme.train/${name}` },
      accessToken: `hf_${a.ownerToken}`,
      hubUrl,
      files: [
        { path: 'README.md', content: new Blob(['---\nlicense: apache-2.0\n---\n# Only for acme\n']) },
        { path: file, content: new Blob([new Uint8Array(randomBytes(4096))]) },
      ],
    });
    const commit = pushed!.commit.oid;
    await must('PUT', `/projects/acme.train/${path}/${name}/refs/golden`, { revision: commit }, a.ownerToken);
    const { envelope } = await must(
      'GET',
      `/projects/acme.train/${path}/${name}/versions/${commit}`,
      undefined,
      a.ownerToken,
    );
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const sig = sign(null, pae(envelope.payloadType, Buffer.from(envelope.payload, 'base64')), privateKey);
    repos[path] = {
      name,
      commit,
      countersign: { keyid: keyIdOf(publicKeyPem), sig: sig.toString('base64'), publicKeyPem },
    };
  }
  await t.store.db
    .insertInto('lineage_edges')
    .values({
      id: newId('lin'),
      org_id: org.id,
      from_kind: 'commit',
      from_id: repos.datasets.commit,
      to_kind: 'commit',
      to_id: repos.models.commit,
      created_at: new Date().toISOString(),
    })
    .execute();
  const repoIds = (await t.store.db.selectFrom('repos').select('id').where('org_id', '=', org.id).execute()).map(
    (r) => r.id,
  );
  const keys = (await must('GET', '/orgs/acme/keys', undefined, a.ownerToken)).items as {
    id: string;
    prefix: string;
    name: string;
  }[];
  const owner = keys.find((k) => k.name === 'owner')!;
  // Inference: an external deployment in each project, limits on both projects and on A's owner
  // key in acme.train, and a minute of token usage of each deployment (as a gateway records it).
  const deployments = [
    [train, await must('POST', '/projects/acme.train/deployments', ext(TRAIN_DEPLOYMENT), a.ownerToken)],
    [research, await must('POST', '/projects/acme.research/deployments', ext(RESEARCH_DEPLOYMENT), a.ownerToken)],
  ] as const;
  await must(
    'PUT',
    '/projects/acme.train/inference-limits',
    { rpm: 600, tpm: 60_000, monthlyTokens: 10_000_000 },
    a.ownerToken,
  );
  await must('PUT', '/projects/acme.train/inference-limits', { rpm: 60, key: owner.prefix }, a.ownerToken);
  await must('PUT', '/projects/acme.research/inference-limits', { monthlyTokens: 5_000 }, a.ownerToken);
  const minute = new Date(Math.floor(Date.now() / 60_000) * 60_000).toISOString();
  await t.store.db
    .insertInto('token_usage')
    .values(
      deployments.map(([project, d]) => ({
        minute,
        org_id: org.id,
        project_id: project.id,
        key_id: owner.id,
        deployment_id: d.id,
        replica_id: '',
        requests: 3,
        errors: 0,
        tokens_in: 120,
        tokens_out: 480,
        ttft_ms_sum: 90,
        duration_ms_sum: 1500,
      })),
    )
    .execute();
  // Metering: an hour of rollups in each project (GPU-seconds, and tokens out of its deployment),
  // a budget on each project, and the operator's prices: a platform-wide GPU-hour, and one on
  // each of A's deployments (which only A may see).
  const hour = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000).toISOString();
  await t.store.db
    .insertInto('usage_hourly')
    .values(
      deployments.flatMap(([project, d], i) => {
        const row = { hour, org_id: org.id, project_id: project.id, gpu_model: '', priority: '', estimated: 0 };
        return [
          {
            ...row,
            metric: 'gpu_seconds',
            pool: i ? 'rtxpro6000' : 'b200',
            priority: 'normal',
            deployment_id: '',
            model: '',
            quantity: 8 * 3600,
          },
          { ...row, metric: 'tokens_out', pool: '', deployment_id: d.id, model: '', quantity: 480 },
        ].map((r) => ({ ...r, updated_at: hour }));
      }),
    )
    .execute();
  await must('PUT', '/projects/acme.train/budget', { unit: 'EUR', amount: 5000 }, a.ownerToken);
  await must(
    'PUT',
    '/projects/acme.research/budget',
    { unit: 'gpu-hours', amount: 100, action: 'block' },
    a.ownerToken,
  );
  const since = `${PAST_MONTH}-01T00:00:00Z`;
  await must('POST', '/prices', { item: 'gpu-hour', unitPrice: '2.10', validFrom: since });
  const trainPrice = await must('POST', '/prices', {
    item: 'tokens-out',
    unitPrice: '0.60',
    validFrom: since,
    deployment: `acme.train/${TRAIN_DEPLOYMENT}`,
  });
  const researchPrice = await must('POST', '/prices', {
    item: 'tokens-in',
    unitPrice: '0.20',
    validFrom: since,
    deployment: `acme.research/${RESEARCH_DEPLOYMENT}`,
  });
  // Console sessions, as a browser opens them: the cookie from Set-Cookie, the CSRF token from the body.
  const openSession = async (apiKey: string): Promise<ConsoleSession> => {
    const r = await t.call('POST', `${API}/session`, { token: null, body: { apiKey } });
    const cookie = /fabrik_session=(fbs_[^;]+)/.exec([r.headers['set-cookie']].flat().join('\n'));
    if (r.status !== 200 || !cookie) throw new Error(`POST /session: ${r.status} ${JSON.stringify(r.body)}`);
    return { token: cookie[1]!, csrf: r.body.csrfToken };
  };
  const aSession = await openSession(a.ownerToken);
  const aScopedSession = await openSession(scoped.token);
  const bSession = await openSession(b.ownerToken);
  const principals = await t.store.db
    .selectFrom('principals')
    .select('id')
    .where((eb) => eb.or([eb('name', 'like', 'acme-%'), eb('org_id', '=', org.id)]))
    .execute();
  const aSecrets = [
    org.id,
    train.id,
    research.id,
    sa.id,
    ...principals.map((r) => r.id),
    ...keys.flatMap((k) => [k.id, k.prefix]),
    dev.id,
    trainJob.id,
    researchJob.id,
    webhook.id,
    breakGlass.id,
    'acme',
    'research',
    'trainer',
    'finetune',
    'survey',
    ...repoIds,
    ...Object.values(repos).flatMap((r) => [r.name, r.commit]),
    RESEARCH_REPO,
    'golden',
    ...deployments.map(([, d]) => d.id),
    TRAIN_DEPLOYMENT,
    RESEARCH_DEPLOYMENT,
    trainPrice.id,
    researchPrice.id,
    ...[aSession, aScopedSession].flatMap((x) => [x.token, x.csrf]),
  ];
  // A key prefix is 12 characters of [a-z0-9]; a stand-in has the same form.
  const ghostPrefix = () => newId('k').slice(2, 14);
  const researchGhosts: [string, string][] = [
    [research.id, newId('prj')],
    [researchJob.id, newId('wl')],
    ['research', 'nosuchproj'],
    ['survey', 'nosuchjob'],
    [RESEARCH_REPO, 'ghost-net'],
  ];
  const ghosts: [string, string][] = [
    [org.id, newId('org')],
    [train.id, newId('prj')],
    ...researchGhosts,
    [owner.id, newId('key')],
    [owner.prefix, ghostPrefix()],
    [scoped.id, newId('key')],
    [scoped.prefix, ghostPrefix()],
    [trainJob.id, newId('wl')],
    [webhook.id, newId('whk')],
    [breakGlass.id, newId('bg')],
    ['trainer', 'ghostbot'],
    ['finetune', 'ghostjob'],
    [repos.models.name, 'ghost-model'],
    [repos.datasets.name, 'ghost-data'],
    [repos.models.commit, randomBytes(20).toString('hex')],
    [repos.datasets.commit, randomBytes(20).toString('hex')],
    ['golden', 'ghosttag'],
    [TRAIN_DEPLOYMENT, 'ghost-chat'],
    [trainPrice.id, newId('price')],
    [researchPrice.id, newId('price')],
    [aSession.token, `fbs_${randomBytes(32).toString('base64url')}`],
    [aSession.csrf, randomBytes(32).toString('base64url')],
    ['acme', 'zyxw'],
  ];
  for (const [, ghost] of ghosts) {
    if (
      aSecrets.some((s) => s.includes(ghost)) ||
      (await t.store.db.selectFrom('api_keys').select('id').where('prefix', '=', ghost).executeTakeFirst())
    ) {
      throw new Error(`stand-in ${ghost} exists`);
    }
  }
  // The audit log: everything so far integrated and signed; an entry of each kind, by seq.
  const { size } = await flush();
  const checkpoint = (await t.call('GET', '/audit/checkpoint', { token: null })).body as string;
  const newest = async (orgId: string, resource = '%') => {
    const row = await t.store.db
      .selectFrom('audit_entries')
      .select((eb) => eb.fn.max('seq').as('seq'))
      .where('org_id', '=', orgId)
      .where('resource', 'like', resource)
      .executeTakeFirstOrThrow();
    const seq = Number(row.seq);
    if (!(seq >= 10 && seq <= size)) throw new Error(`no audit entry of org ${orgId} ${resource} to ask for: ${seq}`);
    return seq;
  };
  const audit = {
    size,
    checkpoint,
    aSeq: await newest(org.id, 'orgs/acme/%'),
    aTrainSeq: await newest(org.id, 'projects/acme.train/%'),
    bSeq: await newest((await must('GET', '/orgs/globex', undefined, b.ownerToken)).id),
    platformSeq: await newest(''),
  };
  if (String(size).includes(GHOST_SEQ) || size >= Number(GHOST_SEQ)) throw new Error('GHOST_SEQ exists');
  return {
    audit,
    a,
    b,
    aOrgId: org.id,
    aTrainId: train.id,
    aResearchId: research.id,
    aTrainJobId: trainJob.id,
    aResearchJobId: researchJob.id,
    aWebhookId: webhook.id,
    aBreakGlassId: breakGlass.id,
    aOwnerKey: { id: owner.id, prefix: owner.prefix },
    aScopedKey: { id: scoped.id, prefix: scoped.prefix, token: scoped.token },
    aRepos: repos,
    aTrainPriceId: trainPrice.id,
    aResearchPriceId: researchPrice.id,
    aSession,
    aScopedSession,
    bSession,
    aSecrets,
    ghosts,
    researchGhosts,
  };
}

async function openApiRoutes(t: TestApp): Promise<string[]> {
  const doc = (await t.call('GET', '/openapi.json', { token: null })).body as {
    paths: Record<string, Record<string, unknown>>;
  };
  const methods = new Set(['get', 'post', 'put', 'patch', 'delete']);
  return Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.keys(ops)
      .filter((m) => methods.has(m))
      .map((m) => `${m.toUpperCase()} ${path}`),
  );
}

/** `GET /api/v1/orgs/{org}` → a regex that matches the paths of that route. */
function templateRegex(route: string): RegExp {
  const path = route.slice(route.indexOf(' ') + 1);
  return new RegExp(`^${path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`);
}

function substitute(probe: Probe, pairs: readonly (readonly [string, string])[]): Probe {
  const swap = (s: string) => pairs.reduce((acc, [from, to]) => acc.split(from).join(to), s);
  return {
    ...probe,
    url: swap(probe.url),
    body: probe.body === undefined ? undefined : JSON.parse(swap(JSON.stringify(probe.body))),
    browser: probe.browser && Object.fromEntries(Object.entries(probe.browser).map(([k, v]) => [k, swap(v)])),
  };
}

function unsubstitute(body: unknown, pairs: readonly (readonly [string, string])[]): unknown {
  const text = pairs.reduce((acc, [from, to]) => acc.split(to).join(from), JSON.stringify(body));
  return JSON.parse(text);
}

/**
 * The Hub protocol under /hub (hidden from /openapi.json, so listed here): B's key against A's
 * repo gets 404 RepoNotFound on every route, never 403 or 200, answers as for a repo that does
 * not exist, names nothing of A it was not sent, and writes nothing.
 */
const HUB_ROUTES: readonly (readonly [string, string])[] = [
  ['GET', '/hub/api/:type/:ns/:name'],
  ['GET', '/hub/api/:type/:ns/:name/revision/:rev'],
  ['GET', '/hub/api/:type/:ns/:name/tree/:rev'],
  ['GET', '/hub/api/:type/:ns/:name/tree/:rev/*'],
  ['POST', '/hub/api/:type/:ns/:name/paths-info/:rev'],
  ['GET', '/hub/:ns/:name/resolve/:rev/*'],
  ['HEAD', '/hub/:ns/:name/resolve/:rev/*'],
  ['GET', '/hub/datasets/:ns/:name/resolve/:rev/*'],
  ['HEAD', '/hub/datasets/:ns/:name/resolve/:rev/*'],
  ['POST', '/hub/api/repos/create'],
  ['DELETE', '/hub/api/repos/delete'],
  ['POST', '/hub/api/:type/:ns/:name/preupload/:rev'],
  ['POST', '/hub/:ns/:repo/info/lfs/objects/batch'],
  ['POST', '/hub/datasets/:ns/:repo/info/lfs/objects/batch'],
  ['POST', '/hub/api/:type/:ns/:name/commit/:rev'],
];

for (const dialect of DIALECTS) {
  describe(`cross-tenant isolation on the Hub protocol (${dialect})`, async () => {
    const skip = await skipReason(dialect);
    let t: TestApp;
    let a: Tenant;
    let b: Tenant;
    let aOrgId: string;
    let aRepoIds: string[];
    let uploadUrl: string;

    before(async () => {
      if (skip) return;
      t = await startTestApp(dialect, { registry: {} });
      a = await seedTenant(t, 'acme');
      b = await seedTenant(t, 'globex');
      const hub = (method: string, url: string, body: string, type: string, token = a.ownerToken) =>
        t.app.inject({
          method: method as 'POST',
          url,
          payload: body,
          headers: { authorization: `Bearer hf_${token}`, 'content-type': type },
        });
      for (const [type, name] of [
        ['model', 'llm'],
        ['dataset', 'corpus'],
      ]) {
        const r = await hub(
          'POST',
          '/hub/api/repos/create',
          JSON.stringify({ name, organization: 'acme.train', type }),
          'application/json',
        );
        assert.equal(r.statusCode, 200, r.body);
        const lines = [
          { key: 'header', value: { summary: 'first' } },
          {
            key: 'file',
            value: { path: 'a.txt', content: Buffer.from('secret of acme').toString('base64'), encoding: 'base64' },
          },
        ];
        const c = await hub(
          'POST',
          `/hub/api/${type}s/acme.train/${name}/commit/main`,
          lines.map((l) => JSON.stringify(l)).join('\n'),
          'application/x-ndjson',
        );
        assert.equal(c.statusCode, 200, c.body);
      }
      const open = await hub(
        'POST',
        '/hub/acme.train/llm.git/info/lfs/objects/batch',
        JSON.stringify({ operation: 'upload', objects: [{ oid: 'ab'.repeat(32), size: 10 }] }),
        'application/vnd.git-lfs+json',
      );
      uploadUrl = new URL(JSON.parse(open.body).objects[0].actions.upload.href).pathname;
      aOrgId = (await t.call('GET', '/api/v1/orgs/acme', { token: a.ownerToken })).body.id;
      aRepoIds = (await t.store.db.selectFrom('repos').select('id').execute()).map((r) => r.id);
    });
    after(async () => {
      if (!skip) await t.close();
    });

    /** One probe per route (several where the type or the body matters), by B's key. */
    const probes = (repo: string, ds: string) => {
      const sha = 'cd'.repeat(32);
      const nd = [
        { key: 'header', value: { summary: 'planted' } },
        { key: 'file', value: { path: 'evil.txt', content: 'ZXZpbA==' } },
      ]
        .map((l) => JSON.stringify(l))
        .join('\n');
      const json = 'application/json';
      const lfs = 'application/vnd.git-lfs+json';
      return [
        ['GET', `/hub/api/models/acme.train/${repo}`],
        ['GET', `/hub/api/datasets/acme.train/${ds}`],
        ['GET', `/hub/api/models/acme.train/${repo}/revision/main`],
        ['GET', `/hub/api/models/acme.train/${repo}/tree/main?recursive=true`],
        ['GET', `/hub/api/datasets/acme.train/${ds}/tree/main/a.txt`],
        ['POST', `/hub/api/models/acme.train/${repo}/paths-info/main`, JSON.stringify({ paths: ['a.txt'] }), json],
        ['GET', `/hub/acme.train/${repo}/resolve/main/a.txt`],
        ['HEAD', `/hub/acme.train/${repo}/resolve/main/a.txt`],
        ['GET', `/hub/datasets/acme.train/${ds}/resolve/main/a.txt`],
        ['HEAD', `/hub/datasets/acme.train/${ds}/resolve/main/a.txt`],
        ['POST', '/hub/api/repos/create', JSON.stringify({ name: repo, organization: 'acme.train' }), json],
        ['POST', '/hub/api/repos/create', JSON.stringify({ name: 'planted', organization: 'acme.train' }), json],
        ['DELETE', '/hub/api/repos/delete', JSON.stringify({ name: repo, organization: 'acme.train' }), json],
        [
          'DELETE',
          '/hub/api/repos/delete',
          JSON.stringify({ name: ds, organization: 'acme.train', type: 'dataset' }),
          json,
        ],
        [
          'POST',
          `/hub/api/models/acme.train/${repo}/preupload/main`,
          JSON.stringify({ files: [{ path: 'x', size: 1, sample: '' }] }),
          json,
        ],
        [
          'POST',
          `/hub/acme.train/${repo}.git/info/lfs/objects/batch`,
          JSON.stringify({ operation: 'upload', objects: [{ oid: sha, size: 3 }] }),
          lfs,
        ],
        [
          'POST',
          `/hub/datasets/acme.train/${ds}.git/info/lfs/objects/batch`,
          JSON.stringify({ operation: 'upload', objects: [{ oid: sha, size: 3 }] }),
          lfs,
        ],
        ['POST', `/hub/api/models/acme.train/${repo}/commit/main`, nd, 'application/x-ndjson'],
        ['POST', `/hub/api/datasets/acme.train/${ds}/commit/main`, nd, 'application/x-ndjson'],
      ] as [string, string, string?, string?][];
    };

    it('every Hub route is in the matrix, and every route of the matrix exists', { skip }, async () => {
      for (const [method, url] of HUB_ROUTES)
        assert.ok(
          t.app.hasRoute({ method: method as 'GET', url }),
          `${method} ${url} is not a route: update HUB_ROUTES`,
        );
      const text = t.app.printRoutes({ commonPrefix: false });
      const covered = (probe: string) =>
        HUB_ROUTES.some(([, url]) =>
          new RegExp(`^${url.replace(/:[a-z]+/g, '[^/]+').replace('*', '.*')}$`).test(probe),
        );
      for (const [method, url] of probes('llm', 'corpus'))
        assert.ok(covered(new URL(url, 'http://x').pathname), `${method} ${url} addresses no route of HUB_ROUTES`);
      assert.ok(text.includes('hub'), 'the Hub routes are registered');
    });

    it("B's key finds nothing of A on any Hub route: 404 RepoNotFound, as for no repo, nothing written", {
      skip,
    }, async () => {
      const before = await snapshotState(t);
      const real = probes('llm', 'corpus');
      const ghost = probes('ghost', 'ghostset');
      for (const [i, [method, url, payload, type]] of real.entries()) {
        const send = (u: string, p?: string) =>
          t.app.inject({
            method: method as 'GET',
            url: u,
            payload: p,
            headers: { authorization: `Bearer hf_${b.ownerToken}`, ...(type ? { 'content-type': type } : {}) },
          });
        const r = await send(url, payload);
        const what = `${method} ${url} ${payload ?? ''}: ${r.statusCode} ${r.body}`;
        assert.equal(r.statusCode, 404, what);
        if (method !== 'HEAD') {
          assert.equal(r.headers['x-error-code'], url.includes('/repos/create') ? 'NOT_FOUND' : 'RepoNotFound', what);
          for (const secret of [aOrgId, ...aRepoIds, 'secret of acme'])
            assert.ok(!r.body.includes(secret), `${what} leaks ${secret}`);
          const [, gUrl, gPayload] = ghost[i]!;
          const g = await send(gUrl, gPayload);
          assert.equal(g.statusCode, 404, `${gUrl}: ${g.body}`);
          const norm = (s: string) => s.replaceAll('ghostset', 'corpus').replaceAll('ghost', 'llm');
          assert.equal(norm(g.body), r.body, `${what}: A's repo and a missing one answer differently`);
        }
      }
      assert.deepEqual(await snapshotState(t), before, JSON.stringify(stateDiff(before, await snapshotState(t))));
    });

    it("A's upload URLs need their token: B's key is no way in", { skip }, async () => {
      const before = await snapshotState(t);
      for (const [method, url, body] of [
        ['GET', uploadUrl],
        ['POST', uploadUrl, '{"parts":[]}'],
        ['PUT', `${uploadUrl}/parts/1`, '0123456789'],
      ] as const) {
        const r = await t.app.inject({
          method: method as 'GET',
          url,
          payload: body,
          headers: {
            authorization: `Bearer hf_${b.ownerToken}`,
            'content-type': method === 'PUT' ? 'application/octet-stream' : 'application/json',
          },
        });
        assert.equal(r.statusCode, 404, `${method} ${url}: ${r.body}`);
      }
      assert.deepEqual(await snapshotState(t), before);
    });
  });
}
