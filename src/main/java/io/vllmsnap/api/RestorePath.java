package io.vllmsnap.api;

/** How a pod of a VllmRestore was brought up. */
public enum RestorePath {
    /** Restored from the snapshot into a placeholder pod. */
    Restore,
    /** Started cold from the recorded pod template (fallback after a failed restore). */
    ColdStart
}
