// A project's Unix identity: what every task of the project runs as (uid = gid). Allocated by
// tenancy (src/tenancy/identity.ts); executors only use it.

/** What a task runs as. `user` is the name a passwd entry gets where the engine needs one (Slurm). */
export interface ProjectIdentity {
  readonly uid: number;
  readonly gid: number;
  readonly user: string;
}

export function identityOf(uid: number): ProjectIdentity {
  return { uid, gid: uid, user: `fabrik-${uid}` };
}
