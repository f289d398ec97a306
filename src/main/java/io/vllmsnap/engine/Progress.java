package io.vllmsnap.engine;

/** Receives phase transitions of a long job, e.g. to print progress in the CLI. */
@FunctionalInterface
public interface Progress {
    Progress NONE = (phase, detail) -> { };

    void phase(String phase, String detail);
}
