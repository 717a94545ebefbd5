/**
 * The agent: the check-in loop that takes part in rounds, in the browser or in Node.
 *
 *     agent.js     Agent (events for the page), enroll, platformString, ROUND_MOVED_ON
 *     secure.js    SecAggSession: one client's side of a SecAgg+ round on WebCrypto
 *     trainer.js   LocalTrainer: the update from the device's samples
 *     tensors.js   weights and updates as the wire's little-endian bytes
 *     backoff.js   exponential backoff with full jitter
 *     errors.js    AgentStopped: what waiting cannot fix
 */

export { Agent, ROUND_MOVED_ON, enroll, platformString } from "./agent.js";
export { Backoff } from "./backoff.js";
export { AgentStopped, UnknownCredential } from "./errors.js";
export { SecAggSession, updateSize } from "./secure.js";
export { decodeWeights, encodeArrays, flatten, readSpecs } from "./tensors.js";
export { LocalTrainer } from "./trainer.js";
