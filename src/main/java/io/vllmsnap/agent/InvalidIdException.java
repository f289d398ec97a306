package io.vllmsnap.agent;

/** A caller sent an ID that is not of the expected shape; answered with 400. */
public class InvalidIdException extends RuntimeException {
    private final String field;

    public InvalidIdException(String field, String value, String problem) {
        super(field + " " + problem + (value == null ? "" : ", got \"" + printable(value) + "\""));
        this.field = field;
    }

    public String field() {
        return field;
    }

    /** Echo at most a short, printable prefix of hostile input back. */
    private static String printable(String value) {
        String cut = value.length() > 80 ? value.substring(0, 80) + "..." : value;
        return cut.replaceAll("[^\\x20-\\x7e]", "?");
    }
}
