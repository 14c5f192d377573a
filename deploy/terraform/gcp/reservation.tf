# Optional: a BigQuery reservation for BACKGROUND jobs, which is what runs
# the CDC background applies of the consumer's upsert tables (README, "CDC
# apply cost and max_staleness"). Off by default (background_slots = 0):
# without an assignment of job type BACKGROUND, every apply is billed on
# demand by the bytes it reads. With it, applies use these slots instead.

resource "google_bigquery_reservation" "background" {
  count             = var.background_slots > 0 ? 1 : 0
  name              = var.background_reservation_name
  location          = var.dataset_location
  edition           = var.background_edition
  slot_capacity     = var.background_slots
  ignore_idle_slots = false
}

resource "google_bigquery_reservation_assignment" "background" {
  count       = var.background_slots > 0 ? 1 : 0
  assignee    = "projects/${var.gcp_project}"
  job_type    = "BACKGROUND"
  reservation = google_bigquery_reservation.background[0].id
}
