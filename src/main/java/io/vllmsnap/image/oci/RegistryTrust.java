package io.vllmsnap.image.oci;

import java.io.ByteArrayInputStream;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509TrustManager;

/**
 * Makes the process trust a registry's CA in addition to the JDK's own CAs. jib-core's HTTP client takes its TLS
 * trust from the JDK default {@link SSLContext} (there is no per-client setting in its public API), so a registry CA
 * from a Secret is added to that default: additively (the JDK's CAs stay trusted, nothing is ever removed) and once per
 * certificate. Other clients in the agent (Kubernetes API, the agent's own TLS) build their own contexts and are not
 * affected beyond also accepting that CA should they use the default.
 */
final class RegistryTrust {

    private static final Map<String, X509Certificate> EXTRA = new LinkedHashMap<>();

    private RegistryTrust() {
    }

    static synchronized void trust(byte[] caPem) {
        List<X509Certificate> certs = parse(caPem);
        boolean added = false;
        for (X509Certificate c : certs) {
            String key = c.getSubjectX500Principal().getName() + "#" + c.getSerialNumber();
            if (EXTRA.putIfAbsent(key, c) == null) {
                added = true;
            }
        }
        if (!added) {
            return;
        }
        try {
            X509TrustManager jdk = trustManager(null);
            KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
            ks.load(null, null);
            int i = 0;
            for (X509Certificate c : EXTRA.values()) {
                ks.setCertificateEntry("registry-ca-" + i++, c);
            }
            X509TrustManager extra = trustManager(ks);
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(null, new TrustManager[] {new Either(jdk, extra)}, null);
            SSLContext.setDefault(ctx);
        } catch (GeneralSecurityException | java.io.IOException e) {
            throw new IllegalStateException("cannot add the registry CA to the JDK's trust", e);
        }
    }

    private static List<X509Certificate> parse(byte[] pem) {
        try {
            List<X509Certificate> certs = new ArrayList<>();
            for (var c : CertificateFactory.getInstance("X.509").generateCertificates(new ByteArrayInputStream(pem))) {
                certs.add((X509Certificate) c);
            }
            if (certs.isEmpty()) {
                throw new IllegalArgumentException("no certificate in the registry CA PEM");
            }
            return certs;
        } catch (CertificateException e) {
            throw new IllegalArgumentException("the registry CA is not PEM certificates: " + e.getMessage(), e);
        }
    }

    private static X509TrustManager trustManager(KeyStore ks) throws GeneralSecurityException {
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(ks);
        for (TrustManager tm : tmf.getTrustManagers()) {
            if (tm instanceof X509TrustManager x) {
                return x;
            }
        }
        throw new GeneralSecurityException("no X.509 trust manager");
    }

    /** Trusts a chain that either the JDK's CAs or the registry CAs accept. */
    private record Either(X509TrustManager first, X509TrustManager second) implements X509TrustManager {
        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            try {
                first.checkClientTrusted(chain, authType);
            } catch (CertificateException e) {
                second.checkClientTrusted(chain, authType);
            }
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            try {
                first.checkServerTrusted(chain, authType);
            } catch (CertificateException e) {
                second.checkServerTrusted(chain, authType);
            }
        }

        @Override
        public X509Certificate[] getAcceptedIssuers() {
            List<X509Certificate> all = new ArrayList<>(List.of(first.getAcceptedIssuers()));
            all.addAll(List.of(second.getAcceptedIssuers()));
            return all.toArray(X509Certificate[]::new);
        }
    }
}
