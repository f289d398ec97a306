package io.vllmsnap.agent.api;

public enum JobKind { SNAPSHOT, RESTORE }
