package io.vllmsnap.agent.discovery;

/** The pod's container is not on this node (or not running): no cgroup or no process was found for it. */
public class ContainerNotFoundException extends RuntimeException {
    public ContainerNotFoundException(String message) {
        super(message);
    }
}
