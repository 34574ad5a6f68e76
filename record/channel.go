package record

import (
	"fmt"
	"strings"
)

// Reserved metadata. Keys that start with ReservedMetaPrefix belong to
// netget: only those listed here are accepted, each with the values it
// documents, so a record never claims what its provider does not do.
const (
	// ReservedMetaPrefix starts the metadata keys netget reserves.
	ReservedMetaPrefix = "netget."
	// MetaChannel says the provider accepts channels for the service
	// (/netget/<network>/channel/1.0.0) and what they carry: ChannelMessages
	// or ChannelStream. A record without it takes no channels.
	MetaChannel = ReservedMetaPrefix + "channel"
	// ChannelMessages: each channel message is one message of the service
	// (a WebSocket target or a Go handler).
	ChannelMessages = "messages"
	// ChannelStream: the channel carries a byte stream (a tcp target);
	// message boundaries mean nothing.
	ChannelStream = "stream"
)

// validateReserved checks the reserved metadata pair k=v: part of
// ValidateMeta.
func validateReserved(k, v string) error {
	if !strings.HasPrefix(k, ReservedMetaPrefix) {
		return nil
	}
	if k != MetaChannel {
		return fmt.Errorf("%w: key %.70q: keys starting with %q are reserved and this one is unknown", ErrBadMetadata, k, ReservedMetaPrefix)
	}
	if v != ChannelMessages && v != ChannelStream {
		return fmt.Errorf("%w: %s=%.70q: want %q or %q", ErrBadMetadata, k, v, ChannelMessages, ChannelStream)
	}
	return nil
}

// AcceptsChannels returns the MetaChannel value of s (ChannelMessages or
// ChannelStream), or "" when s's provider takes no channels.
func (s *Service) AcceptsChannels() string {
	return s.Meta[MetaChannel]
}
