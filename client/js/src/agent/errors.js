/**
 * A reason the agent cannot carry on by waiting: a revoked credential, samples that do not
 * fit the task's model, a task this client cannot serve. The page shows it and offers to retry
 * once the owner has fixed it (new token, other data).
 */
export class AgentStopped extends Error {
  name = "AgentStopped";
}
