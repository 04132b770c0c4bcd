-- Schema v12: indexes for forgetting residents' phone numbers some time
-- after their case closed (ForgetPhones). Each holds only the rows that
-- still carry a phone, so an hourly run reads the few closed before the
-- cutoff, not every case ever closed.
-- cases_closed_phone: closed cases with a phone, by when they closed.
CREATE INDEX cases_closed_phone ON cases (closed_at) WHERE phone != '' AND state = 'closed';
-- case_complainants_phone: complainants with a phone, by when they joined
-- their case (at or before it closed), for a case whose own phone is empty
-- but whose merged-in complainants have one.
CREATE INDEX case_complainants_phone ON case_complainants (added_at) WHERE phone != '';
