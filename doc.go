// Package framed sends and receives whole messages over TCP.
package framed
