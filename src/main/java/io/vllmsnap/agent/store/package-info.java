/**
 * Node storage of the agent: snapshot images per namespace and job records (JSON files written atomically, read
 * through an in-memory index, finished ones pruned by age). Everything is root-only: images hold process memory.
 */
package io.vllmsnap.agent.store;
