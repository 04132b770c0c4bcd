// Package shequ is the root of the Shequ repository: kiosks and a hub for
// Shanghai's "city-management enforcement into communities" programme. It
// holds no code; it documents the layout and carries the test that enforces
// the dependency rules between the parts (imports_test.go).
//
// Layout:
//
//	protocol/        the wire contract: MQTT topics, envelope, message bodies,
//	                 the agent's local API types, strict decoders. Imports only
//	                 the standard library and github.com/google/uuid.
//	hub/             the central hub: org tree, SQLite store, embedded MQTT
//	                 broker, fleet state, HTTP API.
//	agent/           the on-device agent: bbolt store with the outbox, the MQTT
//	                 link to the hub, the local API on a Unix socket.
//	kiosk/           the touchscreen UI: messages (zh/en), screen logic without
//	                 Fyne, the local API client, the Fyne layer.
//	cmd/hub, cmd/agent, cmd/kiosk
//	                 thin mains: flags, config, logger, signals, Run(ctx).
//	packaging/       demo data, fonts and the developer scripts (packaging/dev).
//	docs/            protocol, architecture and operations documents.
//
// Dependency rules (checked by TestImportRules):
//
//   - protocol imports only the standard library and github.com/google/uuid;
//   - agent never imports Fyne or hub;
//   - kiosk never imports bbolt, MQTT (paho, mochi), hub or agent;
//   - hub never imports agent or kiosk;
//   - only cmd/kiosk links fyne.io/fyne/v2/app (cgo and GL);
//   - no package is named util, utils, common, misc or helpers;
//   - every package has a package doc comment.
package shequ
