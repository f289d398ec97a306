package io.vllmsnap.engine;

/** A job on the same source (or image) is already running; the new one is refused, not interleaved. */
public class SourceBusyException extends EngineException {
    public SourceBusyException(String message) {
        super(message);
    }
}
