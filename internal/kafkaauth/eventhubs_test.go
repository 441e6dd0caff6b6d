package kafkaauth_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/internal/kafkaauth"
)

const ehKey = "k3y+Base64/Secret="

func TestParseEventHubsConnectionString(t *testing.T) {
	cases := []struct {
		in                    string
		host, keyName, entity string
	}{
		{"Endpoint=sb://ns1.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=" + ehKey + ";EntityPath=orders",
			"ns1.servicebus.windows.net", "Root", "orders"},
		{" endpoint = sb://ns2.servicebus.windows.net ; sharedaccesskeyname=r;SHAREDACCESSKEY=" + ehKey + ";",
			"ns2.servicebus.windows.net", "r", ""},
		{"Endpoint=sb://ns3.servicebus.chinacloudapi.cn:5671/;SharedAccessSignature=SharedAccessSignature sr=a&sig=" + ehKey + "&se=1;EntityPath=h;Other=1",
			"ns3.servicebus.chinacloudapi.cn", "", "h"},
	}
	for _, c := range cases {
		cs, err := kafkaauth.ParseEventHubsConnectionString(c.in)
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if cs.Host != c.host || cs.KeyName != c.keyName || cs.EntityPath != c.entity {
			t.Errorf("got %q %q %q, want %q %q %q", cs.Host, cs.KeyName, cs.EntityPath, c.host, c.keyName, c.entity)
		}
		if cs.Bootstrap() != c.host+":9093" || cs.Raw() != c.in {
			t.Errorf("bootstrap %q raw %q", cs.Bootstrap(), cs.Raw())
		}
		if strings.Contains(cs.String(), ehKey) || strings.Contains(fmt.Sprintf("%v %+v %#v %v", cs, cs, cs, *cs), ehKey) {
			t.Errorf("String() shows the key: %s", cs)
		}
		ko := cs.KafkaOptions()
		if ko["kafka.sasl.username"] != "$ConnectionString" || ko["kafka.sasl.password"] != c.in || ko["kafka.security.protocol"] != "SASL_SSL" ||
			ko["kafka.sasl.mechanism"] != "PLAIN" || ko["kafka.bootstrap.servers"] != cs.Bootstrap() {
			t.Errorf("KafkaOptions wrong: bootstrap %q user %q", ko["kafka.bootstrap.servers"], ko["kafka.sasl.username"])
		}
	}
}

func TestParseEventHubsConnectionStringErrors(t *testing.T) {
	cases := []struct {
		in, want string
	}{
		{"", "empty"},
		{"SharedAccessKeyName=Root;SharedAccessKey=" + ehKey, "no Endpoint"},
		{"Endpoint=https://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=" + ehKey, "Endpoint is not of the form sb://"},
		{"Endpoint=sb://ns.servicebus.windows.net/,SharedAccessKeyName=Root,SharedAccessKey=" + ehKey, "Endpoint is not of the form"},
		{"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKey=" + ehKey + ";EntityPath=h", "no SharedAccessKeyName"},
		{"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;EntityPath=h", "no SharedAccessKey"},
		{"Endpoint=sb://ns.servicebus.windows.net/;EntityPath=h", "no SharedAccessKeyName and no SharedAccessKey"},
		{"Endpoint=sb://ns.servicebus.windows.net/;k3yWithoutEquals;SharedAccessKeyName=R", "part 2 is not Key=Value"},
		{"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKey=" + ehKey + ";SharedAccessKey=" + ehKey, "SharedAccessKey twice"},
	}
	for _, c := range cases {
		_, err := kafkaauth.ParseEventHubsConnectionString(c.in)
		if err == nil {
			t.Fatalf("%q: no error", kafkaauth.Redact(c.in))
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %q does not contain %q", err, c.want)
		}
		if strings.Contains(err.Error(), "k3y") {
			t.Errorf("error %q shows the key", err)
		}
	}
}

// FuzzParseEventHubsConnectionString checks that no error ever shows the key.
func FuzzParseEventHubsConnectionString(f *testing.F) {
	f.Add("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=R;SharedAccessKey=", "abc", ";EntityPath=h")
	f.Add("Endpoint=", "x", "")
	f.Add("", "k", ";;")
	f.Fuzz(func(t *testing.T, prefix, key, suffix string) {
		secret := "K3Y/" + strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, key) + "+="
		cs, err := kafkaauth.ParseEventHubsConnectionString(prefix + secret + suffix)
		if err != nil {
			if strings.Contains(err.Error(), "K3Y/") {
				t.Fatalf("error %q shows the key", err)
			}
			return
		}
		if strings.Contains(cs.String(), "K3Y/") && !strings.Contains(cs.Host+cs.KeyName+cs.EntityPath, "K3Y/") {
			t.Fatalf("String() %q shows the key", cs)
		}
	})
}
