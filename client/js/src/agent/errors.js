/**
 * A reason the agent cannot carry on by waiting: a revoked credential, samples that do not
 * fit the task's model, a task this client cannot serve. The page shows it and offers to retry
 * once the owner has fixed it (new token, other data).
 */
export class AgentStopped extends Error {
  name = "AgentStopped";
}

/** How the coordinator refuses a credential it never issued (server/store.py's words). */
export const UNKNOWN_CREDENTIAL = "unknown credential";

/**
 * The coordinator does not know this credential at all (not revoked: never issued, so the
 * coordinator at that address was set up afresh). A client holding a new token may enrol again.
 */
export class UnknownCredential extends AgentStopped {
  name = "UnknownCredential";
}
