package io.vllmsnap.api;

/** Life of one pod of a VllmRestore. */
public enum RestorePodPhase {
    /** Pod created; waiting for it to be scheduled and its placeholder (or cold) container to run. */
    Pending,
    /** The node agent restores the snapshot into the pod. */
    Restoring,
    /** Cold-started pod waiting for its readiness probe. */
    Starting,
    /** Serving. */
    Ready,
    /** Failed; the pod is replaced. */
    Failed
}
