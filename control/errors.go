package control

import (
	"errors"
	"fmt"
	"net/http"

	"glasscast/store"
)

// apiError is an AWS-shaped error: HTTP status, x-amzn-ErrorType, and a JSON body whose
// message field the AWS SDKs read (IVS names it exceptionMessage, IVS Chat message).
type apiError struct {
	Status  int
	Code    string
	Message string
	// Fields are extra members of the error shape (IVS Chat's reason, fieldList, resourceId).
	Fields map[string]any
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errValidation(format string, a ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "ValidationException", Message: fmt.Sprintf(format, a...)}
}

// errTooLarge is what AWS's REST-JSON services answer to a request body over their limit.
func errTooLarge(limit int64) *apiError {
	return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "RequestEntityTooLargeException",
		Message: fmt.Sprintf("Request must be smaller than %d bytes for the operation", limit+1)}
}

func errNotFound(format string, a ...any) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: "ResourceNotFoundException", Message: fmt.Sprintf(format, a...)}
}

func errConflict(format string, a ...any) *apiError {
	return &apiError{Status: http.StatusConflict, Code: "ConflictException", Message: fmt.Sprintf(format, a...)}
}

func errQuota(format string, a ...any) *apiError {
	return &apiError{Status: http.StatusPaymentRequired, Code: "ServiceQuotaExceededException", Message: fmt.Sprintf(format, a...)}
}

func errThrottled(format string, a ...any) *apiError {
	return &apiError{Status: http.StatusTooManyRequests, Code: "ThrottlingException", Message: fmt.Sprintf(format, a...)}
}

func errNotBroadcasting(channelArn string) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: "ChannelNotBroadcasting", Message: "Channel " + channelArn + " is not broadcasting"}
}

func errStreamUnavailable(format string, a ...any) *apiError {
	return &apiError{Status: http.StatusServiceUnavailable, Code: "StreamUnavailable", Message: fmt.Sprintf(format, a...)}
}

func errAccessDenied(code, msg string) *apiError {
	return &apiError{Status: http.StatusForbidden, Code: code, Message: msg}
}

func errInternal(err error) *apiError {
	return &apiError{Status: http.StatusInternalServerError, Code: "InternalServerException", Message: "internal error"}
}

// asAPIError turns any error from a handler into the AWS-shaped error the client gets. Store
// errors that escape a handler unmapped are internal errors: handlers own the mapping.
func asAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	if errors.Is(err, store.ErrConflict) {
		return errConflict("the resource was changed concurrently too often; retry")
	}
	return errInternal(err)
}
