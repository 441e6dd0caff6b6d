package web

import "embed"

// The page and its vendored chart library. uPlot is copied from its npm
// package by assets/vendor/update.sh, which pins the version; run
// `go generate ./internal/web` to refresh it, then commit the files.
//
//go:generate bash assets/vendor/update.sh

//go:embed assets/index.html assets/app.js assets/app.css
//go:embed assets/vendor/uPlot.iife.min.js assets/vendor/uPlot.min.css assets/vendor/LICENSE.uPlot
var assetFS embed.FS
