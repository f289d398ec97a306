package io.vllmsnap.agent.web;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.datatype.jsr310.JavaTimeModule;

import java.io.IOException;

/**
 * Reads the agent API's request bodies strictly: an unknown field, a duplicate key, trailing data or a value of the
 * wrong type is refused with 400 instead of being ignored or coerced, so a caller learns at once that the agent
 * did not understand what it asked for (and two parsers can never read one body two ways).
 */
final class RequestBodies {

    private static final ObjectMapper STRICT = JsonMapper.builder()
            .addModule(new JavaTimeModule())
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(DeserializationFeature.FAIL_ON_NUMBERS_FOR_ENUMS)
            .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
            .disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT)
            .disable(MapperFeature.ALLOW_COERCION_OF_SCALARS)
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .build();

    private RequestBodies() {
    }

    /** A body that is not exactly one JSON value of the expected shape; answered with 400. */
    static final class BadBodyException extends RuntimeException {
        private final String reason;

        BadBodyException(String reason, String message, Throwable cause) {
            super(message, cause);
            this.reason = reason;
        }

        String reason() {
            return reason;
        }
    }

    static <T> T read(byte[] body, Class<T> type) {
        if (body == null || body.length == 0) {
            throw new BadBodyException("MalformedJson", "the request needs a JSON body", null);
        }
        ObjectReader reader = STRICT.readerFor(type);
        try {
            T value = reader.readValue(body);
            if (value == null) {
                throw new BadBodyException("MalformedJson", "the body is JSON null, expected an object", null);
            }
            return value;
        } catch (UnrecognizedPropertyException e) {
            throw new BadBodyException("UnknownField", "unknown field \"" + printable(e.getPropertyName()) + "\" in "
                    + type.getSimpleName() + "; known fields: " + e.getKnownPropertyIds(), e);
        } catch (JsonProcessingException e) {
            throw new BadBodyException("MalformedJson", "the body is not a valid " + type.getSimpleName() + ": "
                    + printable(e.getOriginalMessage()), e);
        } catch (IOException e) {
            throw new BadBodyException("MalformedJson", "the body cannot be read: " + printable(e.getMessage()), e);
        }
    }

    /** Echo at most a short, printable part of hostile input back. */
    static String printable(String value) {
        if (value == null) {
            return "";
        }
        String cut = value.length() > 200 ? value.substring(0, 200) + "..." : value;
        return cut.replaceAll("[^\\x20-\\x7e]", "?");
    }
}
