package io.vllmsnap.api;

/** Life of a VllmSnapshot. Ready and Failed are terminal. */
public enum SnapshotPhase {
    /** Waiting for the source pod or its node's agent. */
    Pending,
    /** The agent runs the snapshot job. */
    InProgress,
    /** A complete image exists; restores may use it. */
    Ready,
    /** The snapshot cannot be taken; conditions say why. */
    Failed,
    /** Deleted; waiting until the image is removed from the node. */
    Deleting;

    public boolean isTerminal() {
        return this == Ready || this == Failed;
    }
}
