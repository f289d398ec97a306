package io.vllmsnap.engine;

/** A snapshot or restore failed; the message says which phase and why, in words a user can act on. */
public class EngineException extends Exception {
    public EngineException(String message) {
        super(message);
    }

    public EngineException(String message, Throwable cause) {
        super(message, cause);
    }
}
