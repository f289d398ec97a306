package io.vllmsnap.agent.api;

/** Life of an agent job. SUCCEEDED and FAILED are terminal. */
public enum JobState {
    QUEUED, RUNNING, SUCCEEDED, FAILED;

    public boolean isTerminal() {
        return this == SUCCEEDED || this == FAILED;
    }
}
