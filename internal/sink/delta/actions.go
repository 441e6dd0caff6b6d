package delta

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// The actions of the Delta log that sluice writes or understands, with
// the field names and order of PROTOCOL.md.

type protocolAction struct {
	MinReaderVersion int      `json:"minReaderVersion"`
	MinWriterVersion int      `json:"minWriterVersion"`
	ReaderFeatures   []string `json:"readerFeatures,omitempty"`
	WriterFeatures   []string `json:"writerFeatures,omitempty"`
}

type formatSpec struct {
	Provider string            `json:"provider"`
	Options  map[string]string `json:"options"`
}

type metaDataAction struct {
	ID               string            `json:"id"`
	Name             *string           `json:"name,omitempty"`
	Description      *string           `json:"description,omitempty"`
	Format           formatSpec        `json:"format"`
	SchemaString     string            `json:"schemaString"`
	PartitionColumns []string          `json:"partitionColumns"`
	Configuration    map[string]string `json:"configuration"`
	CreatedTime      *int64            `json:"createdTime,omitempty"`
}

type txnAction struct {
	AppID       string `json:"appId"`
	Version     int64  `json:"version"`
	LastUpdated *int64 `json:"lastUpdated,omitempty"`
}

type addAction struct {
	Path             string             `json:"path"`
	PartitionValues  map[string]*string `json:"partitionValues"`
	Size             int64              `json:"size"`
	ModificationTime int64              `json:"modificationTime"`
	DataChange       bool               `json:"dataChange"`
	Stats            string             `json:"stats,omitempty"`
	Tags             map[string]string  `json:"tags,omitempty"`
}

type removeAction struct {
	Path              string             `json:"path"`
	DeletionTimestamp *int64             `json:"deletionTimestamp,omitempty"`
	DataChange        bool               `json:"dataChange"`
	PartitionValues   map[string]*string `json:"partitionValues,omitempty"`
	Size              *int64             `json:"size,omitempty"`
}

type commitInfoAction struct {
	Timestamp           int64             `json:"timestamp"`
	Operation           string            `json:"operation"`
	OperationParameters map[string]string `json:"operationParameters"`
	IsBlindAppend       bool              `json:"isBlindAppend"`
	EngineInfo          string            `json:"engineInfo,omitempty"`
	TxnID               string            `json:"txnId,omitempty"`
}

// action is one line of a commit file: exactly one field is set.
type action struct {
	CommitInfo *commitInfoAction `json:"commitInfo,omitempty"`
	Protocol   *protocolAction   `json:"protocol,omitempty"`
	MetaData   *metaDataAction   `json:"metaData,omitempty"`
	Txn        *txnAction        `json:"txn,omitempty"`
	Add        *addAction        `json:"add,omitempty"`
	Remove     *removeAction     `json:"remove,omitempty"`
}

// actionIn is a line as read: commitInfo and actions sluice does not know
// (cdc, domainMetadata, ...) are skipped without being decoded.
type actionIn struct {
	Protocol *protocolAction `json:"protocol"`
	MetaData *metaDataAction `json:"metaData"`
	Txn      *txnAction      `json:"txn"`
	Add      *addAction      `json:"add"`
	Remove   *removeAction   `json:"remove"`
}

// encodeActions renders actions as newline-delimited JSON.
func encodeActions(actions []action) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, a := range actions {
		if err := enc.Encode(a); err != nil {
			return nil, fmt.Errorf("encoding delta action: %w", err)
		}
	}
	return buf.Bytes(), nil
}

// decodeActions parses a commit file.
func decodeActions(data []byte) ([]actionIn, error) {
	var out []actionIn
	for n, line := range bytes.Split(data, []byte{'\n'}) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var a actionIn
		if err := json.Unmarshal(line, &a); err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		out = append(out, a)
	}
	return out, nil
}
