package kafkaauth

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
)

// EventHubsKafkaPort is the port of the Event Hubs Kafka endpoint.
const EventHubsKafkaPort = "9093"

// EventHubsUser is the SASL PLAIN user name Event Hubs expects when the
// password is a connection string.
const EventHubsUser = "$ConnectionString"

// EventHubsConn is a parsed Azure Event Hubs connection string:
//
//	Endpoint=sb://NS.servicebus.windows.net/;SharedAccessKeyName=NAME;SharedAccessKey=KEY;EntityPath=HUB
//
// A shared access signature (SharedAccessSignature=...) may replace the key
// name and key. The secret is unexported; String is redacted.
type EventHubsConn struct {
	// Host is the namespace host, e.g. "ns.servicebus.windows.net".
	Host string
	// KeyName is SharedAccessKeyName ("" with a signature).
	KeyName string
	// EntityPath is the event hub (topic) name, "" when absent.
	EntityPath string

	raw string
}

// String shows the connection string with the key redacted.
func (c EventHubsConn) String() string {
	return fmt.Sprintf("Endpoint=sb://%s/;SharedAccessKeyName=%s;SharedAccessKey=%s;EntityPath=%s", c.Host, c.KeyName, redactedMark, c.EntityPath)
}

// GoString is String, so that %#v does not show the key either.
func (c EventHubsConn) GoString() string { return c.String() }

// Raw returns the connection string as given: the SASL password. It holds
// the key; never print it.
func (c *EventHubsConn) Raw() string { return c.raw }

// Bootstrap is the Kafka bootstrap address, host:9093.
func (c *EventHubsConn) Bootstrap() string { return net.JoinHostPort(c.Host, EventHubsKafkaPort) }

var hostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)

// ParseEventHubsConnectionString parses an Event Hubs (or Service Bus)
// namespace or event hub connection string. Errors name the missing or
// malformed part (Endpoint, SharedAccessKeyName, SharedAccessKey,
// EntityPath) and never contain the string's values.
func ParseEventHubsConnectionString(s string) (*EventHubsConn, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("the Event Hubs connection string is empty")
	}
	parts := map[string]string{}
	for i, kv := range strings.Split(s, ";") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("the Event Hubs connection string's part %d is not Key=Value (parts are separated by ';'; values are not shown)", i+1)
		}
		k = strings.ToLower(strings.TrimSpace(k))
		known := map[string]bool{"endpoint": true, "sharedaccesskeyname": true, "sharedaccesskey": true, "entitypath": true,
			"sharedaccesssignature": true, "usedevelopmentemulator": true}
		if !known[k] {
			// Unknown keys are ignored, as Azure SDKs do; a key
			// that is not a plain word is probably a mangled secret.
			continue
		}
		if _, dup := parts[k]; dup {
			return nil, fmt.Errorf("the Event Hubs connection string sets %s twice", canonicalPart(k))
		}
		parts[k] = strings.TrimSpace(v)
	}
	c := &EventHubsConn{raw: s}
	ep, ok := parts["endpoint"]
	if !ok || ep == "" {
		return nil, errors.New("the Event Hubs connection string has no Endpoint (expected Endpoint=sb://<namespace>.servicebus.windows.net/)")
	}
	host := ep
	if i := strings.Index(host, "://"); i >= 0 {
		host = host[i+3:]
	}
	host = strings.TrimRight(host, "/")
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h // a port in the endpoint is not the Kafka port
	}
	if !strings.HasPrefix(strings.ToLower(ep), "sb://") || !hostName.MatchString(host) {
		return nil, errors.New("the Event Hubs connection string's Endpoint is not of the form sb://<namespace>.servicebus.windows.net/ (value not shown)")
	}
	c.Host = host
	_, hasSig := parts["sharedaccesssignature"]
	keyName, hasName := parts["sharedaccesskeyname"]
	key, hasKey := parts["sharedaccesskey"]
	switch {
	case hasSig:
		if parts["sharedaccesssignature"] == "" {
			return nil, errors.New("the Event Hubs connection string's SharedAccessSignature is empty")
		}
	case !hasName && !hasKey:
		return nil, errors.New("the Event Hubs connection string has no SharedAccessKeyName and no SharedAccessKey (copy the whole string from the portal's Shared access policies)")
	case !hasName || keyName == "":
		return nil, errors.New("the Event Hubs connection string has no SharedAccessKeyName")
	case !hasKey || key == "":
		return nil, errors.New("the Event Hubs connection string has no SharedAccessKey")
	}
	c.KeyName = keyName
	c.EntityPath = parts["entitypath"]
	return c, nil
}

func canonicalPart(k string) string {
	switch k {
	case "endpoint":
		return "Endpoint"
	case "sharedaccesskeyname":
		return "SharedAccessKeyName"
	case "sharedaccesskey":
		return "SharedAccessKey"
	case "entitypath":
		return "EntityPath"
	case "sharedaccesssignature":
		return "SharedAccessSignature"
	}
	return "UseDevelopmentEmulator"
}

// KafkaOptions returns the Kafka client options that reach this namespace
// through its Kafka endpoint: kafka.bootstrap.servers host:9093, SASL_SSL,
// PLAIN, user "$ConnectionString" and the whole connection string as the
// password (kafka.sasl.password, so the map holds the secret: never print
// it; Parse and RedactOptions know the option).
func (c *EventHubsConn) KafkaOptions() map[string]string {
	return map[string]string{
		"kafka.bootstrap.servers": c.Bootstrap(),
		optProtocol:               SASLSSL,
		optMechanism:              MechanismPlain,
		optSASLUser:               EventHubsUser,
		optSASLPassword:           c.raw,
	}
}
