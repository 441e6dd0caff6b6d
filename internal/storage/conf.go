package storage

import "github.com/sluice-stream/sluice/internal/options"

// ConfSpec describes the storage settings a Resolver reads from a
// session's configuration (a pipeline file's top-level options,
// Session.SetConf). The registry lists them among the session settings.
// Every one may also be given with Spark's "spark.hadoop." prefix.
var ConfSpec = &options.Spec{
	What: "storage settings",
	Fields: []options.Field{
		{Name: "fs.s3a.access.key", Type: options.String, Secret: true,
			Doc: "S3 access key id (with fs.s3a.secret.key); without them the AWS SDK's default chain is used (AWS_* variables, shared config, web identity, instance profile)."},
		{Name: "fs.s3a.secret.key", Type: options.String, Secret: true, Doc: "S3 secret access key."},
		{Name: "fs.s3a.session.token", Type: options.String, Secret: true, Doc: "S3 session token of temporary credentials."},
		{Name: "fs.s3a.endpoint", Type: options.String,
			Doc: "S3 endpoint of an S3-compatible store or emulator: a URL, or a host[:port] (https unless fs.s3a.connection.ssl.enabled=false)."},
		{Name: "fs.s3a.endpoint.region", Type: options.String, DefaultDoc: "the SDK's (AWS_REGION…), else us-east-1", Doc: "S3 region to sign requests for."},
		{Name: "fs.s3a.path.style.access", Type: options.Bool, Default: "false", Doc: "true addresses buckets as endpoint/bucket (most emulators and S3-compatible stores) rather than bucket.endpoint."},
		{Name: "fs.s3a.connection.ssl.enabled", Type: options.Bool, Default: "true", Doc: "false uses http:// for an fs.s3a.endpoint given without a scheme."},
		{Name: "fs.s3a.multipart.size", Type: options.Size, DefaultDoc: "8MiB (sluice.storage.blockSize)", Doc: "Hadoop's name for sluice.storage.blockSize."},
		{Name: "fs.s3a.fast.upload.active.blocks", Type: options.Int, Min: 1, DefaultDoc: "4 (sluice.storage.uploadConcurrency)", Doc: "Hadoop's name for sluice.storage.uploadConcurrency."},
		{Name: "fs.azure.write.request.size", Type: options.Size, DefaultDoc: "8MiB (sluice.storage.blockSize)", Doc: "Hadoop's name for sluice.storage.blockSize."},
		{Name: "fs.azure.write.max.concurrent.requests", Type: options.Int, Min: 1, DefaultDoc: "4 (sluice.storage.uploadConcurrency)", Doc: "Hadoop's name for sluice.storage.uploadConcurrency."},
		{Name: OptAzureEndpoint, Type: options.String,
			Doc: "Blob service endpoint of every Azure account, for Azurite or a private endpoint: e.g. `http://127.0.0.1:10000/{account}` ({account} is replaced by the account name)."},
		{Name: OptAzureAccount, Type: options.String, DefaultDoc: "AZURE_STORAGE_ACCOUNT", Doc: "Storage account of `az://container/path` URIs, which do not name one."},
		{Name: OptBlockSize, Type: options.Size, Default: "8MiB",
			Doc: "Size of one uploaded block (Azure) or part (S3, at least 5 MiB): a file larger than this is uploaded in blocks, several at a time, while it is written."},
		{Name: OptUploadConcurrency, Type: options.Int, Min: 1, Default: "4", Doc: "Blocks of one file uploaded at once."},
		{Name: OptUploadMemory, Type: options.Size, Default: "64MiB",
			Doc: "Bytes a sink's upload buffers may hold together when the query has no sluice.memory.budget (with one, a quarter of the budget)."},
	},
	Prefixes: []options.Prefix{
		{Prefix: "fs.azure.account.key.", Secret: true,
			Doc: "`fs.azure.account.key.<account>.dfs.core.windows.net` (or `.blob.`): the account's shared key. Without a key or SAS, AZURE_STORAGE_CONNECTION_STRING or the Azure default credential chain (service principal, workload identity, managed identity, Azure CLI) is used."},
		{Prefix: "fs.azure.sas.", Secret: true,
			Doc: "`fs.azure.sas.fixed.token.<account>.dfs.core.windows.net` (ABFS) or `fs.azure.sas.<container>.<account>.blob.core.windows.net` (WASB): a SAS token."},
		{Prefix: "fs.s3a.bucket.", Secret: true,
			Doc: "`fs.s3a.bucket.<bucket>.<setting>`: any fs.s3a setting for one bucket only (Hadoop's per-bucket configuration)."},
		{Prefix: "spark.hadoop.", Secret: true, Doc: "Any storage setting with Spark's prefix for Hadoop settings, e.g. `spark.hadoop.fs.s3a.endpoint`."},
	},
}
