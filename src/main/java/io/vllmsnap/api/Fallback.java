package io.vllmsnap.api;

/** What a VllmRestore does when restoring a pod fails. */
public enum Fallback {
    /** Replace the pod with a new placeholder and try the restore again, with backoff. */
    None,
    /** Start the pod's original command from the recorded template (a cold start), so capacity still arrives. */
    ColdStart
}
