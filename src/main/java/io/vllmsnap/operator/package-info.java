/**
 * The operator: reconcilers of {@code VllmSnapshot} and {@code VllmRestore}. They keep no state in memory: everything
 * they need is in the resources' status, the owned pods and the node agents' job records, so an operator restarted at
 * any point picks up where it was. The node agents are reached only through {@link io.vllmsnap.agent.api.NodeAgents}.
 */
package io.vllmsnap.operator;
