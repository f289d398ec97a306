package io.vllmsnap.api;

/** Life of a VllmRestore as a whole. */
public enum RestorePhase {
    /** Waiting for the snapshot to be Ready. */
    Pending,
    /** Pods are being created, restored or replaced. */
    Progressing,
    /** All wanted replicas are ready. */
    Ready,
    /** Restores keep failing (see the Degraded condition). */
    Degraded,
    /** The restore cannot proceed (missing or failed snapshot, bad spec); conditions say why. */
    Failed
}
