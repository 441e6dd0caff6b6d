package kafkaauth

import "github.com/sluice-stream/sluice/internal/options"

// Fields describe the security options Parse reads, for the Kafka source's
// and sink's option specs and the reference documentation. Parse checks
// their values itself (the combinations matter: credentials need a SASL
// protocol, a key needs its certificate).
var Fields = []options.Field{
	{Name: optProtocol, Type: options.Enum, Default: Plaintext, Allowed: []string{Plaintext, SSL, SASLPlaintext, SASLSSL},
		Doc: "How to talk to the brokers: plain TCP, TLS, SASL over TCP or SASL over TLS."},
	{Name: optMechanism, Type: options.String, DefaultDoc: "PLAIN (from the JAAS login module)", Allowed: []string{MechanismPlain, MechanismScram256, MechanismScram512},
		Doc: "SASL mechanism; GSSAPI, OAUTHBEARER and AWS_MSK_IAM are not supported."},
	{Name: optJAAS, Type: options.String, Secret: true,
		Doc: "Java JAAS line with the credentials: `" + PlainLoginModule + " required username=\"…\" password=\"…\";` (or ScramLoginModule; shaded prefixes accepted)."},
	{Name: optSASLUser, Type: options.String, Doc: "SASL user name (librdkafka style, instead of the JAAS line)."},
	{Name: optSASLPassword, Type: options.String, Secret: true, Doc: "SASL password, with kafka.sasl.username."},
	{Name: optCALocation, Type: options.Path, Doc: "PEM file of the CA certificates to trust (default: the system's)."},
	{Name: optCAPEM, Type: options.String, Doc: "The CA certificates as PEM text."},
	{Name: optCertLocation, Type: options.Path, Doc: "PEM file of the client certificate (mutual TLS)."},
	{Name: optCertPEM, Type: options.String, Doc: "The client certificate as PEM text."},
	{Name: optKeyLocation, Type: options.Path, Doc: "PEM file of the client's private key (unencrypted)."},
	{Name: optKeyPEM, Type: options.String, Secret: true, Doc: "The client's private key as PEM text."},
	{Name: optKeyPassword, Type: options.String, Secret: true, Doc: "Accepted for compatibility; encrypted keys are not supported (decrypt the key file)."},
	{Name: optTrustType, Type: options.String, Default: "PEM", Allowed: []string{"PEM"}, Doc: "Type of the trust store; only PEM (convert JKS/PKCS12 stores)."},
	{Name: optTrustLocation, Type: options.Path, Doc: "Java-style trust store file (PEM)."},
	{Name: optTrustCerts, Type: options.String, Doc: "Trusted certificates as PEM text (Java style)."},
	{Name: optTrustPassword, Type: options.String, Secret: true, Doc: "Accepted for compatibility; PEM trust stores have no password."},
	{Name: optKeystoreType, Type: options.String, Default: "PEM", Allowed: []string{"PEM"}, Doc: "Type of the key store; only PEM."},
	{Name: optKeystoreLoc, Type: options.Path, Doc: "Java-style key store file (PEM: certificate chain and key)."},
	{Name: optKeystoreChain, Type: options.String, Doc: "Client certificate chain as PEM text (Java style)."},
	{Name: optKeystoreKey, Type: options.String, Secret: true, Doc: "Client private key as PEM text (Java style)."},
	{Name: optKeystorePass, Type: options.String, Secret: true, Doc: "Accepted for compatibility; PEM key stores have no password."},
	{Name: optEndpointIdent, Type: options.String, Default: "https", Allowed: []string{"https", ""}, Doc: "`https` verifies the broker's host name; empty verifies the certificate chain only."},
	{Name: optVerifyCerts, Type: options.Bool, Default: "true", Doc: "false trusts any broker certificate (tests and emergencies only)."},
	{Name: optTLSServerName, Type: options.String, Doc: "Host name to verify and send as SNI instead of the broker's address."},
	{Name: optTLSMinVersion, Type: options.String, Default: "TLSv1.2", Allowed: []string{"TLSv1.2", "TLSv1.3"}, Doc: "Lowest TLS version to use."},
	{Name: optEnabledProtocol, Type: options.List, Default: "TLSv1.2,TLSv1.3", Doc: "TLS versions to allow (the lowest one counts)."},
}
