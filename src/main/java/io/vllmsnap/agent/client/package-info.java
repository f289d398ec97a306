/**
 * The operator's side of the agents: where a node's agent listens, how it is trusted (the agent CA, re-read when it
 * changes; the agent's name, per pod when certificates are per pod) and how it is called (HTTPS with a projected
 * token for the agents' audience).
 */
package io.vllmsnap.agent.client;
