/**
 * Wire model of the node agent's HTTPS API: what the operator sends and what the agent answers.
 * Shared by the operator's client and the agent's server so both sides agree by construction.
 * Callers pass IDs only, never paths or command lines; the agent validates every ID.
 */
package io.vllmsnap.agent.api;
