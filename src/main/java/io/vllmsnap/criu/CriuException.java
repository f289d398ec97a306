package io.vllmsnap.criu;

import java.util.List;

/** CRIU failed; the message holds the relevant lines of its log. */
public class CriuException extends Exception {
    private final List<String> errorLines;

    public CriuException(String message, List<String> errorLines) {
        super(errorLines.isEmpty() ? message : message + ":\n  " + String.join("\n  ", errorLines));
        this.errorLines = List.copyOf(errorLines);
    }

    public List<String> errorLines() {
        return errorLines;
    }
}
