package io.vllmsnap.agent.client;

import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;
import javax.net.ssl.X509TrustManager;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.util.Collection;
import java.util.List;

/**
 * TLS towards agents: trust only the agent CA (PEM file from a Secret mount), and check the server certificate names
 * the agent service ({@code serverName}) instead of the address dialled. Agents are reached by pod IP, which changes
 * with every pod, while their certificate carries one stable DNS name.
 */
public final class AgentTls {

    private AgentTls() {
    }

    public static SSLContext context(Path caPemFile, String serverName) throws IOException, GeneralSecurityException {
        KeyStore trust = KeyStore.getInstance(KeyStore.getDefaultType());
        trust.load(null, null);
        try (InputStream in = Files.newInputStream(caPemFile)) {
            int i = 0;
            for (var cert : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                trust.setCertificateEntry("agent-ca-" + i++, cert);
            }
            if (i == 0) {
                throw new CertificateException("no certificate in " + caPemFile);
            }
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        X509TrustManager chainCheck = (X509TrustManager) tmf.getTrustManagers()[0];
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, new TrustManager[] {new NamedServerTrustManager(chainCheck, serverName)}, null);
        return ctx;
    }

    /** Chain validated against the CA; then the leaf must name {@code serverName} in its DNS subject alternative names. */
    static final class NamedServerTrustManager extends X509ExtendedTrustManager {
        private final X509TrustManager chainCheck;
        private final String serverName;

        NamedServerTrustManager(X509TrustManager chainCheck, String serverName) {
            this.chainCheck = chainCheck;
            this.serverName = serverName;
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            chainCheck.checkServerTrusted(chain, authType);
            if (!dnsNames(chain[0]).contains(serverName)) {
                throw new CertificateException("agent certificate does not name " + serverName + " (has " + dnsNames(chain[0]) + ")");
            }
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
            checkServerTrusted(chain, authType);
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
            checkServerTrusted(chain, authType);
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            throw new CertificateException("client certificates are not used");
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
            checkClientTrusted(chain, authType);
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
            checkClientTrusted(chain, authType);
        }

        @Override
        public X509Certificate[] getAcceptedIssuers() {
            return chainCheck.getAcceptedIssuers();
        }

        private static List<String> dnsNames(X509Certificate cert) throws CertificateParsingException {
            Collection<List<?>> names = cert.getSubjectAlternativeNames();
            if (names == null) {
                return List.of();
            }
            return names.stream().filter(n -> Integer.valueOf(2).equals(n.get(0))).map(n -> (String) n.get(1)).toList();
        }
    }
}
