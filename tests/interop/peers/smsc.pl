#!/usr/bin/perl
# A test SMSC on Debian's Net::SMPP (libnet-smpp-perl), independent of callswitch's
# SMPP code. Usage: smsc.pl PORT LOGFILE
#
# Accepts ESME connections one after another on 127.0.0.1:PORT. Answers
# bind_transceiver and enquire_link; for every submit_sm it logs one line
#   submit <TAB> seq <TAB> source_addr <TAB> destination_addr <TAB> esm_class
#          <TAB> data_coding <TAB> registered_delivery <TAB> hex(short_message)
# answers submit_sm_resp with message_id m<N>, and sends a delivery receipt
# (deliver_sm, esm_class 0x04): stat UNDELIV when the destination ends in 9999,
# DELIVRD otherwise. A message whose text starts with "echo:" is answered by a
# mobile-originated deliver_sm from its destination back to its source.
use strict;
use warnings;
use Net::SMPP;
use IO::Handle;

my ($port, $logfile) = @ARGV;
die "usage: smsc.pl PORT LOGFILE\n" unless $port && $logfile;
open(my $log, '>>', $logfile) or die "cannot open $logfile: $!";
$log->autoflush(1);

my $listener = Net::SMPP->new_listen('127.0.0.1', port => $port, timeout => 1)
    or die "cannot listen on $port: $!";
print $log "listening\t$port\n";
my $count = 0;

sub stamp {
    my @t = gmtime(time);
    return sprintf("%02d%02d%02d%02d%02d", $t[5] % 100, $t[4] + 1, $t[3], $t[2], $t[1]);
}

while (1) {
    my $c = $listener->accept;
    next unless defined $c;
    print $log "connected\n";
    while (1) {
        my $pdu = $c->read_pdu();
        last unless $pdu;
        my $cmd = $pdu->{cmd};
        if ($cmd == 0x00000009) {
            $c->set_version(0x34);
            $c->bind_transceiver_resp(system_id => 'perlsmsc', seq => $pdu->{seq});
            print $log "bound\t$pdu->{system_id}\t$pdu->{password}\t$pdu->{system_type}\n";
        } elsif ($cmd == 0x00000015) {
            $c->enquire_link_resp(seq => $pdu->{seq});
            print $log "enquire_link\n";
        } elsif ($cmd == 0x00000004) {
            $count++;
            my $id = "m$count";
            my $sm = $pdu->{short_message};
            print $log join("\t", "submit", $pdu->{seq}, $pdu->{source_addr},
                $pdu->{destination_addr}, $pdu->{esm_class}, $pdu->{data_coding},
                $pdu->{registered_delivery}, unpack("H*", $sm)), "\n";
            $c->submit_sm_resp(message_id => $id, seq => $pdu->{seq});
            my $stat = $pdu->{destination_addr} =~ /9999$/ ? 'UNDELIV' : 'DELIVRD';
            my $err = $stat eq 'DELIVRD' ? '000' : '001';
            my $now = stamp();
            $c->deliver_sm(
                source_addr => $pdu->{destination_addr},
                destination_addr => $pdu->{source_addr},
                esm_class => 0x04,
                data_coding => 0,
                short_message => "id:$id sub:001 dlvrd:001 submit date:$now done date:$now stat:$stat err:$err text:",
                async => 1,
            );
            if ($sm =~ /^echo:(.*)$/s) {
                $c->deliver_sm(
                    source_addr_ton => 1,
                    source_addr_npi => 1,
                    source_addr => $pdu->{destination_addr},
                    dest_addr_ton => 1,
                    dest_addr_npi => 1,
                    destination_addr => $pdu->{source_addr},
                    esm_class => 0x00,
                    data_coding => 0,
                    short_message => "reply to $1",
                    async => 1,
                );
                print $log "mo\t$pdu->{destination_addr}\n";
            }
        } elsif ($cmd == 0x00000006) {
            $c->unbind_resp(seq => $pdu->{seq});
            print $log "unbound\n";
            last;
        } elsif ($cmd & 0x80000000) {
            # deliver_sm_resp and the like: nothing to do
        } else {
            $c->generic_nack(status => 3, seq => $pdu->{seq});
        }
    }
    close($c);
    print $log "disconnected\n";
}
