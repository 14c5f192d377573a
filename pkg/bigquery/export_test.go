package bigquery

// AllTypes is fuzzTable for the package's external tests.
var AllTypes = fuzzTable
