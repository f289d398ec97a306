package io.vllmsnap.testing;

import io.restassured.RestAssured;
import io.restassured.specification.RequestSpecification;
import org.eclipse.microprofile.config.ConfigProvider;

/**
 * RestAssured aimed at the application's management interface, where /q/health and /q/metrics are served (a port
 * of their own, apart from the agent API; the port a test run got is published as quarkus.management.test-port).
 */
public final class ManagementInterface {

    private ManagementInterface() {
    }

    /** Like {@code RestAssured.given()}, on the management port: {@code given().get("/q/metrics")}. */
    public static RequestSpecification given() {
        return RestAssured.given().port(ConfigProvider.getConfig().getValue("quarkus.management.test-port", Integer.class));
    }
}
