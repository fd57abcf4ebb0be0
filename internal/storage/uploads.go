package storage

import (
	"context"
	"fmt"
	"time"
)

// Upload is one XEP-0363 HTTP upload slot: reserved when a user asks for
// it, stored once the file has arrived. The file itself is not in the
// store (the upload module keeps it on disk under its ID).
type Upload struct {
	// ID names the slot in its URLs; chosen by the caller, unique.
	ID string
	// Local and Domain are the owner's account.
	Local, Domain string
	// Filename and ContentType are as the slot was granted (ContentType
	// may be empty).
	Filename, ContentType string
	// Size is the file's exact length in bytes.
	Size int64
	// Created is when the slot was granted; kept to the millisecond.
	Created time.Time
	// Stored means the file has arrived; set by MarkUploadStored.
	Stored bool
}

// UploadQuota is what ReserveUpload checks before it records a slot.
type UploadQuota struct {
	// Since starts the window of the per-account quota.
	Since time.Time
	// Account is the most bytes of slots one account may have been
	// granted since Since, the new one included; 0 for no limit.
	Account int64
	// Total is the most bytes all slots may hold, the new one included;
	// 0 for no limit.
	Total int64
}

// QuotaError is the error ReserveUpload returns when a slot would pass a
// quota. It wraps ErrLimit.
type QuotaError struct {
	// Total is set when the total quota is reached, else the account's.
	Total bool
	// Frees is the creation time of the upload whose end makes room for
	// the new one (the account's window moving past it, or its deletion);
	// zero when no removal would.
	Frees time.Time
}

func (e *QuotaError) Error() string {
	which := "account"
	if e.Total {
		which = "total"
	}
	return fmt.Sprintf("%v: %s upload quota", ErrLimit, which)
}

// Unwrap makes errors.Is(err, ErrLimit) hold.
func (e *QuotaError) Unwrap() error { return ErrLimit }

// Uploads stores the HTTP upload slots (XEP-0363). Deleting an account
// deletes its uploads.
type Uploads interface {
	// ReserveUpload records the slot u (Stored is ignored: a new slot is
	// not stored) if the quotas q allow it, else it returns a
	// *QuotaError; the check and the insert are atomic. The account must
	// exist (ErrNotFound); an ID in use is ErrExists; an empty ID or a
	// negative size is ErrInvalid.
	ReserveUpload(ctx context.Context, u Upload, q UploadQuota) error
	// Upload returns the slot id, or ErrNotFound.
	Upload(ctx context.Context, id string) (Upload, error)
	// MarkUploadStored records that the file of slot id arrived. It
	// returns ErrNotFound if there is no such slot and ErrExists if it
	// was already stored.
	MarkUploadStored(ctx context.Context, id string) error
	// DeleteUploads deletes the slots created before before, and those
	// never stored created before unstoredBefore, and returns how many
	// it deleted.
	DeleteUploads(ctx context.Context, before, unstoredBefore time.Time) (int, error)
}
